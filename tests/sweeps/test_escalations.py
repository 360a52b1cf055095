"""The SLA clock: escalations, follow-up reminders, stale claims and the volume guardrail, in business time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.services import audit, leads, outbox
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.settings import Settings
from bot.slack.blocks.notices import render_notice
from bot.slack.delivery import deliver_due
from bot.slack.gateway import Gateway
from bot.slack.ids import Action
from bot.store.models import Assignment, Notice, Pql, Rep
from bot.sweeps import escalate as escalate_module
from bot.sweeps.escalate import escalate
from bot.sweeps.follow_ups import follow_ups
from bot.sweeps.runner import Sweeps, default_steps
from bot.sweeps.stale_claims import stale_claims
from bot.sweeps.volume_guardrail import volume_guardrail
from tests.scoring.builders import NY, Trial
from tests.standin import DROP, SlackStandIn

ANA, BEN, BOSS = "U0ANA", "U0BEN", "U0BOSS"
WED = datetime(2026, 11, 4, 10, 0, tzinfo=NY)  # an ordinary Wednesday morning
H, MIN = timedelta(hours=1), timedelta(minutes=1)
SLA_CLOCK = default_steps("escalate", "follow_ups", "stale_claims", "guardrail")


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


class World:
    """A store with a router, the roster synced, and the escalation sweeps."""

    def __init__(self, engine, *, reps: str = f"{ANA}:Ana Ruiz,{BEN}:Ben Okafor", all_steps: bool = False,
                 **settings) -> None:
        self.settings = Settings(_env_file=None, pql_manager=BOSS, pql_reps=reps, pql_timezone="America/New_York",
                                 **settings)
        self.router = Router(self.settings.calendar, cap=5, manager=BOSS)
        self.pipeline = Pipeline(engine, tz=NY, router=self.router)
        self.sweeps = Sweeps(self.pipeline, self.router, self.settings,
                             steps=[] if all_steps else SLA_CLOCK)
        with self.pipeline.session() as session, session.begin():
            leads.sync_roster(session, self.settings.roster, now=ny(2026, 10, 1, 9, 0))

    def trial(self, user: str, at: datetime, tier: str = "medium") -> Trial:
        signup = datetime.combine((at - timedelta(days=4)).astimezone(NY).date(), time(8, 0), NY)
        # A domain each: users of one domain activating together would be that account's one lead (seed 001).
        trial = Trial(user, email=f"{user}@{user}.example", first_name=user.capitalize(), signup=signup)
        if tier == "high":
            return trial.activate(1).invite(1).view(2).view(3)
        return trial.activate(1).invite(2).integrate(2)

    def lead(self, user: str, at: datetime, tier: str = "medium") -> int:
        """A lead recorded (and routed) at `at`; returns its id."""
        self.pipeline.ingest(self.trial(user, at, tier).events, at=at)
        with self.pipeline.session() as session:
            pql = session.exec(select(Pql).where(Pql.user_id == user)).one()
            assert pql.tier == tier
            return pql.id

    def pql(self, pql_id: int) -> Pql:
        with self.pipeline.session() as session:
            return session.get(Pql, pql_id)

    def act(self, fn, pql_id: int, user: str, **kwargs):
        with self.pipeline.session() as session, session.begin():
            who = leads.actor(session, user, manager=BOSS)
            return fn(session, session.get(Pql, pql_id), who, **kwargs)

    def claim(self, pql_id: int, at: datetime, user: str | None = None) -> str:
        user = user or self.pql(pql_id).rep_id
        self.act(leads.claim, pql_id, user, now=at, tz=NY, cap=5)
        return user

    def touch(self, pql_id: int, at: datetime, email_key: str | None = "email1", channel: str = "email") -> None:
        self.act(leads.log_touch, pql_id, self.pql(pql_id).claimed_by, channel=channel, email_key=email_key,
                 note=None, now=at)

    def notices(self, prefix: str) -> list[Notice]:
        """The notices whose key starts with `prefix`, a typed notice's `blocks` rendered from its payload as
        delivery renders them."""
        with self.pipeline.session() as session:
            found = [n for n in session.exec(select(Notice).order_by(Notice.id)) if n.key.startswith(prefix)]
            session.expunge_all()
        for notice in found:
            if notice.blocks is None and notice.payload is not None:
                notice.blocks = render_notice(notice.payload, notice.text or "")
        return found


@pytest.fixture
def world(engine):
    return World(engine)


def keys(notices) -> list[str]:
    return [n.key for n in notices]


def actions(notice: Notice) -> list[str]:
    return [e["action_id"] for b in notice.blocks if b["type"] == "actions" for e in b["elements"]]


# 1. @here after one business hour ------------------------------------------------------------------------------

def test_an_unclaimed_lead_gets_an_at_here_in_its_thread_after_one_business_hour_and_not_before(world):
    pql_id = world.lead("sarah", WED)
    assert escalate(world.sweeps, WED + 59 * MIN) == 0
    assert world.notices("esc-") == []
    assert escalate(world.sweeps, WED + H) == 1
    [here] = world.notices("esc-here:")
    assert (here.key, here.kind, here.pql_id) == (f"esc-here:{pql_id}", "reply", pql_id)
    assert here.text.startswith("<!here> PQL-") and "waited 1 h" in here.text and f"/claim PQL-{pql_id}" in here.text


def test_a_claimed_lead_gets_no_at_here(world):
    pql_id = world.lead("sarah", WED)
    world.claim(pql_id, WED + 30 * MIN)
    escalate(world.sweeps, WED + H)
    assert world.notices("esc-here:") == []


# 2. The manager at 2 business hours, and on an SLA miss ------------------------------------------------------

def test_the_manager_hears_of_a_lead_still_unclaimed_after_two_business_hours(world):
    pql_id = world.lead("sarah", WED)
    escalate(world.sweeps, WED + 2 * H - MIN)
    assert world.notices("esc-2h:") == []
    escalate(world.sweeps, WED + 2 * H + 5 * MIN)
    [dm] = world.notices("esc-2h:")
    assert (dm.kind, dm.target, dm.pql_id) == ("dm", BOSS, pql_id)
    assert f"PQL-{pql_id} is still unclaimed" in dm.text and "Unclaimed for 2 h 5 min" in dm.text
    assert actions(dm) == [Action.REASSIGN, Action.CLAIM_FOR, Action.DETAILS]
    text = str(dm.blocks)
    for expected in ("Sarah", "Acme Corp", "Medium", f"<@{world.pql(pql_id).rep_id}> (assigned, not claimed)"):
        assert expected in text


def test_the_manager_hears_of_a_claimed_but_untouched_lead_after_two_business_hours(world):
    pql_id = world.lead("sarah", WED)
    rep = world.claim(pql_id, WED + 30 * MIN)
    escalate(world.sweeps, WED + 2 * H)
    [dm] = world.notices("esc-2h:")
    assert "claimed but untouched" in dm.text and "No touch 2 h after the alert" in dm.text
    assert f"<@{rep}> (claimed)" in str(dm.blocks)
    assert actions(dm) == [Action.REASSIGN, Action.RELEASE, Action.DETAILS]


def test_a_touched_lead_escalates_to_nobody(world):
    pql_id = world.lead("sarah", WED)
    world.claim(pql_id, WED + 30 * MIN)
    world.touch(pql_id, WED + 45 * MIN)
    assert escalate(world.sweeps, WED + 8 * H) == 0
    assert world.notices("esc-") == []


def test_a_medium_lead_missing_its_four_hour_sla_is_a_second_dm_to_the_manager(world):
    pql_id = world.lead("sarah", WED)
    assert world.pql(pql_id).sla_due_at == WED + 4 * H
    escalate(world.sweeps, WED + 2 * H)
    escalate(world.sweeps, WED + 4 * H)  # due at 14:00: not missed yet
    assert world.notices("esc-sla:") == []
    escalate(world.sweeps, WED + 4 * H + 35 * MIN)
    [sla] = world.notices("esc-sla:")
    assert (sla.target, sla.pql_id) == (BOSS, pql_id)
    assert f"PQL-{pql_id} missed its first-touch SLA" in sla.text and "SLA missed by 35 min" in sla.text
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}", f"esc-2h:{pql_id}", f"esc-sla:{pql_id}"]


def test_the_sla_clock_counts_business_time_only(world):
    pql_id = world.lead("sarah", ny(2026, 11, 4, 16, 0))  # SLA: 2 h on Wednesday + 2 h on Thursday
    escalate(world.sweeps, ny(2026, 11, 5, 10, 59))
    assert world.notices("esc-sla:") == []
    escalate(world.sweeps, ny(2026, 11, 5, 11, 5))
    [sla] = world.notices("esc-sla:")
    assert "SLA missed by 5 min" in sla.text
    assert world.pql(pql_id).sla_due_at == ny(2026, 11, 5, 11, 0)


def test_a_high_lead_missing_its_two_hour_sla_makes_one_dm_not_two(world):
    pql_id = world.lead("raj", WED, tier="high")
    assert world.pql(pql_id).sla_due_at == WED + 2 * H
    escalate(world.sweeps, WED + 2 * H)
    assert world.notices("esc-2h:") + world.notices("esc-sla:") == []
    for at in (WED + 2 * H + MIN, WED + 3 * H, WED + 6 * H):
        escalate(world.sweeps, at)
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}", f"esc-sla:{pql_id}"]


def test_a_medium_lead_first_seen_past_both_marks_gets_only_the_sla_dm(world):
    pql_id = world.lead("sarah", WED)
    escalate(world.sweeps, WED + 5 * H)
    escalate(world.sweeps, WED + 6 * H)
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}", f"esc-sla:{pql_id}"]


def test_nothing_is_escalated_for_a_closed_lead(world):
    pql_id = world.lead("sarah", WED)
    world.claim(pql_id, WED + 10 * MIN)
    world.act(leads.set_disposition, pql_id, world.pql(pql_id).claimed_by, disposition="meeting_set", reason=None,
              now=WED + 20 * MIN)
    assert escalate(world.sweeps, WED + 8 * H) == 0
    assert world.notices("esc-") == []


# Business time: weekends, DST, holidays ----------------------------------------------------------------------

def test_a_pql_recorded_at_1730_on_friday_escalates_on_monday_morning(world):
    friday = ny(2026, 11, 6, 17, 30)
    pql_id = world.lead("sarah", friday)
    for at in (friday + H, ny(2026, 11, 7, 12, 0), ny(2026, 11, 9, 9, 29)):  # Friday evening, Saturday, Monday
        escalate(world.sweeps, at)
    assert world.notices("esc-") == []
    escalate(world.sweeps, ny(2026, 11, 9, 9, 30))  # 30 min on Friday + 30 min on Monday
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}"]
    escalate(world.sweeps, ny(2026, 11, 9, 10, 30))
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}", f"esc-2h:{pql_id}"]


def test_escalations_keep_business_hours_across_the_end_of_daylight_saving_time(world):
    friday = ny(2026, 10, 30, 17, 30)  # EDT (UTC-4); clocks go back on Sunday 1 November
    assert friday.utcoffset() == -4 * H
    pql_id = world.lead("sarah", friday)
    monday_0930 = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)  # 09:30 EST (UTC-5)
    assert monday_0930.astimezone(NY).hour == 9
    escalate(world.sweeps, monday_0930 - MIN)
    assert world.notices("esc-") == []
    escalate(world.sweeps, monday_0930)
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}"]
    assert world.pql(pql_id).sla_due_at == datetime(2026, 11, 2, 17, 30, tzinfo=UTC)  # 12:30 EST, 4 business h


def test_a_holiday_pushes_escalations_a_day(engine):
    world = World(engine, pql_holidays="2026-11-09")  # Monday off
    pql_id = world.lead("sarah", ny(2026, 11, 6, 17, 30))
    escalate(world.sweeps, ny(2026, 11, 9, 9, 30))
    escalate(world.sweeps, ny(2026, 11, 10, 9, 29))
    assert world.notices("esc-") == []
    escalate(world.sweeps, ny(2026, 11, 10, 9, 30))
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}"]


# Exactly once --------------------------------------------------------------------------------------------------

def test_run_due_twice_for_the_same_minute_and_again_later_escalates_each_thing_once(engine):
    world = World(engine, all_steps=True)  # rescore and queue included, as `pqlbot tick` runs them
    pql_id = world.lead("sarah", WED)
    sent = []
    for at in (WED + H, WED + H, WED + 2 * H, WED + 2 * H, WED + 4 * H + MIN, WED + 4 * H + MIN, WED + 9 * H):
        with freeze_time(at):
            done = world.sweeps.run_due()  # the pipeline's clock is the frozen one
        assert -1 not in done.values()
        sent.append(done["escalate"])
    assert sent == [1, 0, 1, 0, 1, 0, 0]
    assert keys(world.notices("esc-")) == [f"esc-here:{pql_id}", f"esc-2h:{pql_id}", f"esc-sla:{pql_id}"]


def test_two_processes_sweeping_the_same_minute_escalate_once(engine):
    world = World(engine)
    other = World(engine)  # a second process: its own pipeline and sweeps over the same store
    ids = [world.lead(f"u{n}", WED) for n in range(4)]
    barrier = threading.Barrier(2)

    def sweep(sweeps):
        barrier.wait()
        sweeps.run_due(WED + 5 * H)

    threads = [threading.Thread(target=sweep, args=(w.sweeps,)) for w in (world, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    world.sweeps.run_due(WED + 5 * H)  # whatever a locked-out process missed, the next sweep makes good
    expected = sorted(f"esc-{kind}:{pql_id}" for pql_id in ids for kind in ("here", "sla"))
    assert sorted(keys(world.notices("esc-"))) == expected


# Automatic reassignment on an SLA miss -------------------------------------------------------------------------

def test_an_sla_miss_does_not_move_the_lead_unless_the_setting_is_on(world):
    assert world.settings.pql_reassign_on_sla_miss is False
    pql_id = world.lead("sarah", WED)
    rep = world.claim(pql_id, WED + 10 * MIN)
    escalate(world.sweeps, WED + 5 * H)
    pql = world.pql(pql_id)
    assert (pql.claimed_by, pql.rep_id) == (rep, rep)
    assert world.notices("esc-moved:") == []
    [sla] = world.notices("esc-sla:")
    assert "Moved automatically" not in str(sla.blocks)


def test_with_the_setting_on_an_sla_miss_moves_the_lead_to_the_other_rep_once(engine):
    world = World(engine, pql_reassign_on_sla_miss=True)
    pql_id = world.lead("sarah", WED)
    rep = world.claim(pql_id, WED + 10 * MIN)
    other = BEN if rep == ANA else ANA
    escalate(world.sweeps, WED + 4 * H + MIN)
    pql = world.pql(pql_id)
    assert (pql.rep_id, pql.claimed_by, pql.state) == (other, None, "assigned")
    [moved] = world.notices("esc-moved:")
    assert moved.kind == "reply" and f"<@{rep}>" in moved.text and f"moved to <@{other}>" in moved.text
    [sla] = world.notices("esc-sla:")
    assert f"Moved automatically to <@{other}> (from <@{rep}>)" in str(sla.blocks)
    assert f"<@{other}> (assigned, not claimed)" in str(sla.blocks)
    assert any(n.target == other for n in world.notices(f"assigned:{pql_id}:{other}:"))
    with world.pipeline.session() as session:
        given = session.exec(select(Assignment).where(Assignment.pql_id == pql_id).order_by(Assignment.id)).all()
        trail = [e for e in audit.trail(session, pql_id=pql_id) if e.detail.get("reason") == "sla_miss"]
    assert (given[-1].rep_id, given[-1].reason) == (other, "sla_miss")
    assert len(trail) == 1 and "first-touch SLA missed" in trail[0].detail["why"]
    escalate(world.sweeps, WED + 6 * H)  # still untouched with the new rep: not moved back and forth
    assert world.pql(pql_id).rep_id == other and len(world.notices("esc-moved:")) == 1


def test_with_the_setting_on_a_lead_nobody_else_can_take_stays_put_and_the_manager_is_told(engine):
    world = World(engine, pql_reassign_on_sla_miss=True)
    pql_id = world.lead("sarah", WED)
    rep = world.claim(pql_id, WED + 10 * MIN)
    other = BEN if rep == ANA else ANA
    with world.pipeline.session() as session, session.begin():
        leads.set_paused(session, other, True, now=WED)
    escalate(world.sweeps, WED + 4 * H + MIN)
    assert world.pql(pql_id).claimed_by == rep
    [sla] = world.notices("esc-sla:")
    assert "Nobody else can take it right now" in str(sla.blocks)


# 3. Follow-up reminders ----------------------------------------------------------------------------------------

def test_follow_up_reminders_land_on_business_days_and_walk_the_sequence(world):
    thursday = ny(2026, 11, 5, 10, 0)
    pql_id = world.lead("sarah", thursday - H)
    rep = world.claim(pql_id, thursday - 30 * MIN)
    world.touch(pql_id, thursday, "email1")
    for at in (ny(2026, 11, 6, 10, 0), ny(2026, 11, 7, 10, 0), ny(2026, 11, 9, 9, 59)):  # Fri, Sat, Mon 09:59
        assert follow_ups(world.sweeps, at) == 0
    assert follow_ups(world.sweeps, ny(2026, 11, 9, 10, 0)) == 1  # two business days after Thursday: Monday
    [email2] = world.notices("followup:")
    assert (email2.key, email2.kind, email2.target) == (f"followup:{pql_id}:email2", "dm", rep)
    assert email2.text.startswith(f"Email 2 is due for PQL-{pql_id} (Sarah)") and "Thu 5 Nov" in email2.text
    assert actions(email2) == [Action.LOG_TOUCH, Action.SET_DISPOSITION, Action.DETAILS]
    assert follow_ups(world.sweeps, ny(2026, 11, 9, 10, 0)) == 0  # once

    world.touch(pql_id, ny(2026, 11, 9, 11, 0), "email2")
    follow_ups(world.sweeps, ny(2026, 11, 11, 10, 59))
    assert len(world.notices("followup:")) == 1
    follow_ups(world.sweeps, ny(2026, 11, 11, 11, 0))
    assert keys(world.notices("followup:"))[-1] == f"followup:{pql_id}:email3"

    world.touch(pql_id, ny(2026, 11, 11, 14, 0), "email3")
    follow_ups(world.sweeps, ny(2026, 11, 13, 14, 0))  # Friday
    last = world.notices("followup:")[-1]
    assert last.key == f"followup:{pql_id}:disposition" and "No Response" in last.text
    assert actions(last) == [Action.SET_DISPOSITION, Action.DETAILS]
    follow_ups(world.sweeps, ny(2026, 11, 20, 14, 0))
    assert len(world.notices("followup:")) == 3


def test_an_email_logged_after_hours_is_followed_up_at_the_next_opening(world):
    pql_id = world.lead("sarah", ny(2026, 11, 5, 16, 0))
    world.claim(pql_id, ny(2026, 11, 5, 16, 30))
    world.touch(pql_id, ny(2026, 11, 5, 20, 0), "email1")  # Thursday evening
    follow_ups(world.sweeps, ny(2026, 11, 9, 17, 59))
    assert world.notices("followup:") == []
    follow_ups(world.sweeps, ny(2026, 11, 10, 9, 0))
    assert keys(world.notices("followup:")) == [f"followup:{pql_id}:email2"]


def test_follow_ups_stop_at_a_disposition_or_a_conversion(world):
    thursday = ny(2026, 11, 5, 10, 0)
    done, converted = world.lead("sarah", thursday - H), world.lead("tom", thursday - H)
    for pql_id in (done, converted):
        world.claim(pql_id, thursday - 30 * MIN)
        world.touch(pql_id, thursday, "email1")
    world.act(leads.set_disposition, done, world.pql(done).claimed_by, disposition="nurture", reason=None,
              now=thursday + H)
    tom = world.trial("tom", thursday - H)
    world.pipeline.ingest([*tom.events, *tom.add("trial_converted", thursday + H).events[-1:]], at=thursday + H)
    assert world.pql(converted).state == "stopped_converted"
    assert follow_ups(world.sweeps, ny(2026, 11, 12, 10, 0)) == 0
    assert world.notices("followup:") == []


def test_three_touches_without_email_3_ask_for_a_disposition(world):
    pql_id = world.lead("sarah", WED - H)
    world.claim(pql_id, WED - 30 * MIN)
    world.touch(pql_id, WED, "email1")
    world.touch(pql_id, WED + H, None, channel="call")
    world.touch(pql_id, ny(2026, 11, 6, 10, 0), "email2")  # the third and last touch, on Friday
    follow_ups(world.sweeps, ny(2026, 11, 10, 10, 0))
    assert keys(world.notices("followup:")) == [f"followup:{pql_id}:disposition"]


# 4. Stale claims -----------------------------------------------------------------------------------------------

def test_a_claim_untouched_for_a_business_day_is_flagged_to_the_manager_once(world):
    pql_id = world.lead("sarah", WED - H)
    rep = world.claim(pql_id, WED)
    assert stale_claims(world.sweeps, ny(2026, 11, 5, 9, 59)) == 0  # 8 h Wednesday + 59 min Thursday
    assert stale_claims(world.sweeps, ny(2026, 11, 5, 10, 0)) == 1
    [flag] = world.notices("stale:")
    claimed_at = world.pql(pql_id).claimed_at
    assert (flag.key, flag.kind, flag.target) == (f"stale:{pql_id}:{claimed_at.isoformat()}", "dm", BOSS)
    assert f"<@{rep}> (claimed)" in str(flag.blocks) and "Claimed 1 business day ago" in flag.text
    assert actions(flag) == [Action.RELEASE, Action.REASSIGN, Action.DETAILS]
    assert stale_claims(world.sweeps, ny(2026, 11, 5, 10, 0)) == 0
    assert stale_claims(world.sweeps, ny(2026, 11, 9, 12, 0)) == 0
    assert len(world.notices("stale:")) == 1


def test_a_claim_over_a_weekend_is_not_stale_until_a_business_day_has_passed(world):
    pql_id = world.lead("sarah", ny(2026, 11, 6, 16, 0))
    world.claim(pql_id, ny(2026, 11, 6, 17, 0))  # Friday 17:00: 1 h Friday, then Monday
    stale_claims(world.sweeps, ny(2026, 11, 9, 16, 59))
    assert world.notices("stale:") == []
    stale_claims(world.sweeps, ny(2026, 11, 9, 17, 0))
    assert len(world.notices("stale:")) == 1


def test_a_touched_claim_is_not_stale_and_a_released_then_reclaimed_lead_can_be_flagged_again(world):
    touched = world.lead("tom", WED - H)
    world.claim(touched, WED)
    world.touch(touched, WED + H)
    pql_id = world.lead("sarah", WED - H)
    world.claim(pql_id, WED)
    stale_claims(world.sweeps, ny(2026, 11, 5, 10, 0))
    world.act(leads.release, pql_id, BOSS, now=ny(2026, 11, 5, 11, 0))
    world.claim(pql_id, ny(2026, 11, 5, 12, 0), user=ANA)
    stale_claims(world.sweeps, ny(2026, 11, 6, 11, 59))
    assert len(world.notices("stale:")) == 1
    stale_claims(world.sweeps, ny(2026, 11, 6, 12, 0))
    flags = world.notices("stale:")
    assert [f.pql_id for f in flags] == [pql_id, pql_id] and flags[0].key != flags[1].key


# 5. The volume guardrail --------------------------------------------------------------------------------------

def add_day_of_leads(world: World, day: datetime, count: int) -> None:
    """`count` PQLs recorded on `day` (one ingest, many users)."""
    events = [e for n in range(count) for e in world.trial(f"d{day:%m%d}u{n}", day).events]
    world.pipeline.ingest(events, at=day)


def test_the_volume_guardrail_fires_on_the_third_day_over_ten_per_rep_once_per_streak(engine):
    world = World(engine, reps=f"{ANA}:Ana Ruiz")  # one rep: over 10 PQLs a day is 11
    days = [ny(2026, 11, d, 12, 0) for d in (2, 3, 4, 5, 6, 7, 8, 9, 10)]
    for day in days[:3]:
        add_day_of_leads(world, day, 11)
    assert volume_guardrail(world.sweeps, ny(2026, 11, 4, 23, 59)) == 0  # the third day isn't over yet
    assert volume_guardrail(world.sweeps, ny(2026, 11, 5, 0, 1)) == 1
    [dm] = world.notices("guardrail-volume:")
    assert (dm.key, dm.target) == ("guardrail-volume:2026-11-04", BOSS)
    assert "over 10 per rep per day for 3 days" in dm.text and "Mon 2 Nov: 11" in dm.text
    assert volume_guardrail(world.sweeps, ny(2026, 11, 5, 0, 1)) == 0
    add_day_of_leads(world, days[3], 12)  # the fourth day of the same streak: no second DM
    assert volume_guardrail(world.sweeps, ny(2026, 11, 6, 9, 0)) == 0
    add_day_of_leads(world, days[4], 3)  # the streak breaks on Friday...
    for day in (ny(2026, 11, d, 12, 0) for d in (9, 10, 11)):  # ...and a new one runs Monday to Wednesday
        add_day_of_leads(world, day, 11)
    for at in (ny(2026, 11, 9, 9, 0), ny(2026, 11, 11, 9, 0), ny(2026, 11, 12, 9, 0), ny(2026, 11, 13, 9, 0)):
        volume_guardrail(world.sweeps, at)
    assert keys(world.notices("guardrail-volume:")) == ["guardrail-volume:2026-11-04", "guardrail-volume:2026-11-11"]


def test_a_weekends_leads_count_on_monday_so_the_weekend_neither_breaks_a_streak_nor_makes_one(engine):
    """Seed 002's "> 10/SDR/day for 3+ days", in the business days SDRs work (bot/domain/guardrails.py): the
    weekend's leads reach the reps, and their cap, on Monday."""
    world = World(engine, reps=f"{ANA}:Ana Ruiz")
    for d, count in ((5, 11), (6, 11), (7, 6), (8, 6)):  # Thu, Fri over; Sat and Sun 6 each, 12 on Monday
        add_day_of_leads(world, ny(2026, 11, d, 12, 0), count)
    assert volume_guardrail(world.sweeps, ny(2026, 11, 9, 12, 0)) == 0  # Monday is not over
    assert volume_guardrail(world.sweeps, ny(2026, 11, 10, 0, 1)) == 1
    [dm] = world.notices("guardrail-volume:")
    assert dm.key == "guardrail-volume:2026-11-09"
    assert "Thu 5 Nov: 11, Fri 6 Nov: 11, Mon 9 Nov: 12" in dm.text


def test_ten_per_rep_per_day_is_not_over_the_guardrail(engine):
    world = World(engine)  # two reps: 20 a day is 10 each
    for d in (2, 3, 4):
        add_day_of_leads(world, ny(2026, 11, d, 12, 0), 20)
    assert volume_guardrail(world.sweeps, ny(2026, 11, 5, 9, 0)) == 0
    with world.pipeline.session() as session:
        assert len(session.exec(select(Rep).where(Rep.on_roster)).all()) == 2


# Digests: one `<!here>` and one manager's DM per sweep, not one per lead ---------------------------------------

CROWD = 23


def crowd(world: World, at: datetime = WED) -> list[int]:
    """23 leads recorded at once (10 assigned under the two reps' caps, 13 queued), their alerts up in the channel."""
    ids = [world.lead(f"u{n:02d}", at) for n in range(CROWD)]
    with world.pipeline.session() as session, session.begin():
        for pql_id in ids:
            pql = session.get(Pql, pql_id)
            pql.alert_channel, pql.alert_ts = "C0ALERTS", f"1762268400.{pql_id:06d}"
    return ids


def link(pql_id: int) -> str:
    return f"<https://slack.com/archives/C0ALERTS/p1762268400{pql_id:06d}|PQL-{pql_id}>"


def test_twenty_three_leads_due_in_one_sweep_make_one_at_here_one_manager_dm_and_a_reply_in_each_thread(world):
    ids = crowd(world)
    assert escalate(world.sweeps, WED + 5 * H) == CROWD + 2
    replies = world.notices("esc-here:")
    assert sorted(n.pql_id for n in replies) == ids and {n.kind for n in replies} == {"reply"}
    assert not any("<!here>" in n.text for n in replies)
    assert all(n.text.startswith(f"PQL-{n.pql_id} has waited 5 h") for n in replies)
    [here] = world.notices("digest-here:")
    assert (here.kind, here.target, here.state) == ("channel", "#pql-alerts", "pending")
    lines = here.text.splitlines()
    assert lines[0] == f"<!here> {CROWD} PQLs have waited over an hour with nobody claiming them:"
    assert lines[1] == f"• {link(ids[0])} · U00, Acme Corp · waited 5 h" and here.text.count("<!here>") == 1
    assert len([line for line in lines if line.startswith("• ")]) == 15 and "…and 8 more" in lines
    # The manager: one DM listing them, and each lead's own escalation kept (folded into it, never sent alone).
    [dm] = world.notices("digest-manager:")
    assert (dm.kind, dm.target, dm.state) == ("dm", BOSS, "pending")
    assert dm.text.startswith(f"⏰ {CROWD} PQLs need you")
    assert f"• {link(ids[0])} · U00, Acme Corp · SLA missed by 1 h · <@" in dm.text
    assert "Nobody: waiting in the queue" in dm.text
    assert len([line for line in dm.text.splitlines() if line.startswith("• ")]) == 15
    folded = world.notices("esc-sla:")
    assert sorted(n.pql_id for n in folded) == ids and {(n.state, n.target) for n in folded} == {("folded", BOSS)}
    with world.pipeline.session() as session:
        assert session.exec(select(Notice).where(Notice.target == BOSS, Notice.state == "pending")).all() == [dm]


def test_rerunning_the_sweep_after_a_digest_sends_nothing_more_and_each_rung_of_the_ladder_is_one_digest(engine):
    world = World(engine, all_steps=True)  # rescore and queue included, as `pqlbot tick` runs them
    ids = crowd(world)
    made = []
    for at in (WED + H, WED + H, WED + 2 * H, WED + 2 * H, WED + 4 * H + MIN, WED + 4 * H + MIN, WED + 9 * H):
        with freeze_time(at):
            done = world.sweeps.run_due()
        assert -1 not in done.values()
        made.append(done["escalate"])
    # 1 h: a reply in each thread and the channel's <!here>; 2 h: the manager's DM; the SLA missed: another DM.
    assert made == [CROWD + 1, 0, 1, 0, 1, 0, 0]
    assert len(world.notices("digest-here:")) == 1
    unclaimed, late = world.notices("digest-manager:")
    assert unclaimed.text.startswith(f"⏰ {CROWD} PQLs") and "Unclaimed for 2 h" in unclaimed.text
    assert "SLA missed by 1 min" in late.text
    for kind in ("here", "2h", "sla"):
        assert sorted(n.pql_id for n in world.notices(f"esc-{kind}:")) == ids


def test_one_lead_due_among_several_owed_the_manager_keeps_its_own_at_here(world):
    first = world.lead("sarah", WED)
    later = [world.lead(f"u{n}", WED + 2 * H) for n in range(3)]
    escalate(world.sweeps, WED + H)  # only Sarah has waited an hour: the message of her own, as before
    [here] = world.notices("esc-here:")
    assert here.pql_id == first and here.text.startswith("<!here>") and world.notices("digest-") == []
    escalate(world.sweeps, WED + 3 * H)  # Sarah's 2 h DM, the others' <!here>: one shape each
    assert world.notices("esc-2h:")[0].state == "pending"  # one lead owed the manager: its own card
    [digest] = world.notices("digest-here:")
    assert [line.split(" · ")[0] for line in digest.text.splitlines()[1:-1]] == [f"• PQL-{p}" for p in later]


def test_a_crash_before_the_sweep_commits_queues_nothing_and_the_next_sweep_escalates_each_lead_once(
        world, monkeypatch):
    ids = crowd(world)
    real_dm = outbox.dm

    def crash(*args, **kwargs):  # the process dies after the replies and the channel's digest were queued
        raise SystemExit("killed")

    monkeypatch.setattr(outbox, "dm", crash)
    with pytest.raises(SystemExit):
        escalate(world.sweeps, WED + 5 * H)
    assert world.notices("esc-") == world.notices("digest-") == []
    monkeypatch.setattr(outbox, "dm", real_dm)
    assert escalate(world.sweeps, WED + 5 * H) == CROWD + 2
    assert escalate(world.sweeps, WED + 5 * H + MIN) == 0
    assert len(world.notices("digest-here:")) == len(world.notices("digest-manager:")) == 1
    assert sorted(n.pql_id for n in world.notices("esc-here:")) == ids


def test_one_leads_failure_leaves_it_out_of_the_digests_and_the_next_sweep_escalates_it(world, monkeypatch):
    ids = crowd(world)
    real = escalate_module._owed_now

    def fails_on_the_fifth(sweeps, session, pql, now):
        if pql.id == ids[4]:
            raise RuntimeError("boom")
        return real(sweeps, session, pql, now)

    monkeypatch.setattr(escalate_module, "_owed_now", fails_on_the_fifth)
    assert escalate(world.sweeps, WED + 5 * H) == CROWD - 1 + 2
    assert ids[4] not in [n.pql_id for n in world.notices("esc-")]
    monkeypatch.setattr(escalate_module, "_owed_now", real)
    assert escalate(world.sweeps, WED + 5 * H + MIN) == 2  # its own <!here> in its thread, its own card
    assert keys(world.notices(f"esc-here:{ids[4]}")) == [f"esc-here:{ids[4]}"]
    assert world.notices(f"esc-here:{ids[4]}")[0].text.startswith("<!here>")
    assert world.notices(f"esc-sla:{ids[4]}")[0].state == "pending"


def test_after_a_crash_between_the_sweep_and_the_send_slack_gets_each_message_once(engine):
    """The sweep commits, the process dies before anything is sent; a restarted one sweeps again and delivers. Its
    first post of the channel's digest reaches Slack and the answer is lost (the alerts before it were refused, so
    the replies wait for them): Slack still shows each message once. (PQL_ALERTS_CHANNEL is the channel's id, as
    .env.example advises: as a #name, a post made before any alert was ever posted could not be looked for.)"""
    world = World(engine, pql_alerts_channel="C0ALERTS")
    with SlackStandIn() as slack:
        clock = [WED]
        slack.clock = lambda: clock[0].timestamp()  # Slack stamps messages on the test's clock
        gateway = Gateway.connect("xoxb-test", slack.url, backoff=0.01, clock=lambda: clock[0])

        def deliver(at: datetime):
            clock[0] = at
            return deliver_due(engine, gateway, render_alert=lambda s, pql_id: (f"PQL-{pql_id}", None),
                               alerts_channel="C0ALERTS", now=at)

        ids = [world.lead(f"u{n:02d}", WED) for n in range(CROWD)]
        sweep = WED + 5 * H
        assert escalate(world.sweeps, sweep) == CROWD + 2
        restarted = World(engine, pql_alerts_channel="C0ALERTS")  # the crash: a new process on the same store
        assert escalate(restarted.sweeps, sweep) == 0
        [digest] = world.notices("digest-here:")
        before = [n for n in world.notices("") if n.id < digest.id and n.kind != "reply"]  # the alerts, reps' DMs
        slack.fail_next("chat.postMessage", times=len(before), error="channel_not_found")  # refused, this once
        slack.fail_next("chat.postMessage", drop=True, after=True)  # then the digest: posted, the answer lost
        deliver(sweep)
        [dropped] = [c for c in slack.calls_to("chat.postMessage") if c.status == DROP]
        assert dropped.params["text"].startswith(f"<!here> {CROWD} PQLs")
        for minute in range(1, 12):
            escalate(restarted.sweeps, sweep + minute * MIN)
            deliver(sweep + minute * MIN)
        channel = slack.history("#pql-alerts")
        heres = [m for m in channel if m.thread_ts is None and "<!here>" in (m.text or "")]
        assert len(heres) == 1 and heres[0].text.startswith(f"<!here> {CROWD} PQLs")
        replies = [m for m in channel if m.thread_ts is not None]
        assert len(replies) == CROWD and not any("<!here>" in m.text for m in replies)
        assert len({m.thread_ts for m in replies}) == CROWD
        alerts = sorted(int(m.text.removeprefix("PQL-")) for m in channel if m.thread_ts is None and m not in heres)
        assert alerts == ids
        assert len(slack.history(BOSS)) == 1 and slack.history(BOSS)[0].text.startswith(f"⏰ {CROWD} PQLs")
