"""Pilot bench: the seed's 4-week pilot (seed 002, section 8) with 2 SDRs, run against a fresh SQLite store.

    .venv/bin/python bench/pilot.py [--seed 7] [--days 28] [--every 15]

Simulated time, no Slack (the outbox fills and is counted, not delivered). Deterministic for a seed:
- 28 days from Monday 19 October 2026 (US clocks fall back on Sunday 1 November); business hours 9-18 in
  New York; two reps (Ana, Ben), a manager, a cap of 5 new PQLs per rep per day;
- 2-6 PQLs a day on weekdays and the odd one at weekends, three burst days of 15; 70 % arrive in
  business hours, the rest at night; 60 % medium, 30 % high, 10 % fast lane. Each is a trial whose events
  make it qualify at its arrival time, ingested through `Pipeline.ingest` (routed as it lands);
- reps work in business hours only: they claim a lead a while after it lands on them (usually within the
  hour, sometimes hours later), log Email 1 after that, and set a disposition one to four business days on.
  Ben is off sick one day (paused), Ana pauses for an afternoon;
- `Sweeps.run_due` every 15 simulated minutes (rescore when due, the queue, escalations, follow-ups...).

Printed: the day-by-day table (PQLs recorded, new PQLs landed on each rep, queue depth at midnight), the
largest daily count per rep, the notices owed by kind (escalations: esc-here, esc-2h, esc-sla), the SLA
clocks (time to first touch in business hours from when the lead was recorded, median and p90, and the
share within the tier's SLA, target >= 80 %), the sweeps' cost, and a final line checking that no rep ever
got more than 5 new PQLs in a day (exit 1 if one did).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # run from anywhere, installed or not

from sqlmodel import select  # noqa: E402

from bot.domain.lifecycle import TIER_RANK  # noqa: E402
from bot.domain.sla import FIRST_TOUCH as SLA  # noqa: E402
from bot.services import leads  # noqa: E402
from bot.services.pipeline import Pipeline  # noqa: E402
from bot.services.routing import Router  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import open_store  # noqa: E402
from bot.store.models import Assignment, Notice, Pql, Touch  # noqa: E402
from bot.sweeps.runner import Sweeps  # noqa: E402
from scoring import parse_event  # noqa: E402

TZ = ZoneInfo("America/New_York")
START = date(2026, 10, 19)  # a Monday
ANA, BEN, BOSS = "U0ANA", "U0BEN", "U0BOSS"
NAMES = {ANA: "Ana", BEN: "Ben"}
CAP = 5
BURST_DAYS = (3, 10, 22)  # Thursday of week 1, Thursday of week 2, Friday of week 4: 15 PQLs each
TARGET_SLA_SHARE = 0.80
TARGET_WALL_S = 120.0
TIERS = (("medium", 6), ("high", 3), ("fast_lane", 1))
DISPOSITIONS = (("meeting_set", 2), ("nurture", 3), ("no_response", 3), ("converted_self_serve", 1),
                ("disqualified", 1))
MINUTE = timedelta(minutes=1)
#: Business minutes from a lead landing on a rep until they open it, by tier: (share, low, high) bands.
REACT = {
    "fast_lane": ((0.8, 2, 20), (0.15, 20, 50), (0.05, 50, 120)),
    "high": ((0.7, 3, 30), (0.2, 30, 75), (0.1, 75, 200)),
    "medium": ((0.6, 5, 60), (0.25, 60, 150), (0.15, 150, 400)),
}
WRITE = (8, 25)  # minutes from claiming a lead to sending its Email 1
PUT_ASIDE = 0.12  # claimed, then put aside: Email 1 goes 1-4 business hours later


def local(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(START + timedelta(days=day), datetime.min.time(), TZ).replace(hour=hour, minute=minute)


# -- the lead a trial becomes ------------------------------------------------------------------------------

_ids = itertools.count()


def trial_events(user: str, at: datetime, tier: str) -> list:
    """Events that make `user` qualify in `tier` at `at` (the last signal a minute before): signed up the day
    before, every signal on two calendar days (no multi-day points, no hold)."""
    at = at.astimezone(TZ)
    before = at - timedelta(days=1)
    domain = f"{user}.example.com"
    raw = [("signup_complete", before, {"email": f"{user}@{domain}", "company_name": f"{user.title()} Inc",
                                        "company_size": 400, "first_name": user.title()})]
    if tier == "fast_lane":
        raw.append(("demo_requested", at - MINUTE, {}))
    else:
        raw += [("activation_complete", before + 5 * MINUTE, {}),
                ("invite_sent", before + 10 * MINUTE, {"invitee_email": f"bo@{domain}"})]
        if tier == "high":
            raw += [("page_view", before + 15 * MINUTE, {"page_path": "/pricing"}),
                    ("page_view", at - 2 * MINUTE, {"page_path": "/pricing"})]
        raw.append(("integration_connected", at - MINUTE, {"integration_type": "Snowflake"}))
    return [parse_event({"type": "track", "event": name, "userId": user, "timestamp": when.isoformat(),
                         "messageId": f"p{next(_ids)}", "properties": props}) for name, when, props in raw]


# -- the simulation ----------------------------------------------------------------------------------------


@dataclass
class Pilot:
    seed: int
    days: int
    every: timedelta
    rng: random.Random = field(init=False)
    now: datetime = field(init=False)
    agenda: list = field(default_factory=list)  # (when, n, what, action)
    seq: itertools.count = field(default_factory=itertools.count)
    handled: set[tuple[int, str]] = field(default_factory=set)  # (lead, rep) whose rep's work is scheduled
    paused_until: dict[str, datetime] = field(default_factory=dict)
    free_at: dict[str, datetime] = field(default_factory=dict)  # when each rep is through their current lead
    piles: dict[str, list] = field(default_factory=lambda: defaultdict(list))  # leads each rep has noticed
    arrivals: Counter = field(default_factory=Counter)  # local date -> PQLs recorded
    tiers: Counter = field(default_factory=Counter)
    queue_at_midnight: dict[date, int] = field(default_factory=dict)
    paused_days: dict[date, list[str]] = field(default_factory=lambda: defaultdict(list))
    sweep_seconds: float = 0.0
    sweep_runs: int = 0
    sweep_failures: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = local(0)
        self.tmp = tempfile.TemporaryDirectory(prefix="pqlbot-pilot-")
        self.settings = Settings(_env_file=None, database_url=f"sqlite:///{self.tmp.name}/pilot.db",
                                 pql_reps=f"{ANA}:Ana Ruiz,{BEN}:Ben Okafor", pql_manager=BOSS,
                                 pql_timezone=TZ.key, pql_daily_cap=CAP)
        self.calendar = self.settings.calendar
        self.router = Router(self.calendar, cap=CAP, manager=BOSS)
        self.pipeline = Pipeline(open_store(self.settings.database_url), tz=TZ, router=self.router,
                                 clock=lambda: self.now)
        self.sweeps = Sweeps(self.pipeline, self.router, self.settings)
        with self.pipeline.session() as session, session.begin():
            leads.sync_roster(session, self.settings.roster, now=self.now)

    def at(self, when: datetime, what: str, action: Callable[[], None]) -> None:
        heapq.heappush(self.agenda, (when.astimezone(UTC), next(self.seq), what, action))

    # -- what happens -------------------------------------------------------------------------------------

    def plan(self) -> None:
        """The PQLs that will arrive and the pauses, decided up front from the seed."""
        users = itertools.count(1)
        for day in range(self.days):
            weekday = (START + timedelta(days=day)).weekday()
            if day in BURST_DAYS:
                count = 15
            elif weekday < 5:
                count = self.rng.randint(2, 6)
            else:
                count = self.rng.choice((0, 0, 0, 1))
            for _ in range(count):
                if self.rng.random() < 0.7 and weekday < 5:
                    moment = local(day, 9) + timedelta(minutes=self.rng.randrange(9 * 60))
                else:  # the evening before midnight or the small hours after it
                    evening = self.rng.random() < 0.5
                    span = 6 * 60 if evening else 9 * 60
                    moment = local(day, 18 if evening else 0) + timedelta(minutes=self.rng.randrange(span))
                tier = self.rng.choices([t for t, _ in TIERS], weights=[w for _, w in TIERS])[0]
                user = f"t{next(users)}"
                self.at(moment, "arrive", lambda m=moment, t=tier, u=user: self.arrive(u, m, t))
        # Ben is off sick on Wednesday of week 2; Ana takes an afternoon off on Tuesday of week 3.
        self.pause(BEN, local(9, 7, 30), local(10, 7, 30))
        self.pause(ANA, local(15, 13, 0), local(15, 17, 30))

    def pause(self, rep: str, start: datetime, end: datetime) -> None:
        def on() -> None:
            self.paused_until[rep] = end
            self.paused_days[start.date()].append(f"{NAMES[rep]} paused")
            self.act(lambda session: leads.set_paused(session, rep, True, now=self.now), "pause")

        def off() -> None:
            self.paused_until.pop(rep, None)
            self.act(lambda session: leads.set_paused(session, rep, False, now=self.now), "resume")
            self.next_lead(rep)

        self.at(start, "pause", on)
        self.at(end, "resume", off)

    def arrive(self, user: str, moment: datetime, tier: str) -> None:
        done = self.pipeline.ingest(trial_events(user, moment, tier), at=moment)
        assert len(done.rescored.triggered) == 1, (user, tier)
        self.arrivals[moment.astimezone(TZ).date()] += 1
        self.tiers[tier] += 1

    def act(self, work: Callable, what: str) -> None:
        try:
            with self.pipeline.session() as session, session.begin():
                work(session)
        except leads.Refused:
            self.refusals[what] += 1

    # -- the reps ---------------------------------------------------------------------------------------

    def delay(self, choices: tuple[tuple[float, int, int], ...]) -> timedelta:
        """Business minutes, from (share, low, high) bands."""
        roll, total = self.rng.random(), 0.0
        for share, low, high in choices:
            total += share
            if roll < total:
                return timedelta(minutes=self.rng.uniform(low, high))
        return timedelta(minutes=choices[-1][2])

    def working(self, rep: str, when: datetime) -> datetime:
        """The first moment at or after `when` the rep is at work (business hours, not paused)."""
        when = self.calendar.next_open(when)
        end = self.paused_until.get(rep)
        if end and when < end:
            when = self.calendar.next_open(end) + timedelta(minutes=self.rng.uniform(5, 30))
        return when

    def schedule_new_work(self) -> None:
        """Leads that landed on a rep since the last look: the rep notices each a while later (sooner for the
        higher tiers) and adds it to their pile."""
        with self.pipeline.session() as session:
            fresh = [(p.id, p.rep_id, p.assigned_at, p.tier) for p in session.exec(
                select(Pql).where(Pql.rep_id.is_not(None), Pql.claimed_by.is_(None), Pql.state == "assigned"))
                if (p.id, p.rep_id) not in self.handled]
        for pql_id, rep, assigned_at, tier in sorted(fresh, key=lambda f: f[0]):
            self.handled.add((pql_id, rep))
            noticed = self.working(rep, self.calendar.add(assigned_at, self.delay(REACT[tier])))
            item = (-TIER_RANK[tier], assigned_at, pql_id)
            self.at(noticed, "notice", lambda r=rep, i=item: (heapq.heappush(self.piles[r], i), self.next_lead(r)))

    def next_lead(self, rep: str) -> None:
        """A free rep at work takes the most urgent lead on their pile (fast lane, high, medium, then oldest):
        claims it and writes Email 1, or now and then claims it and puts it aside for a few hours."""
        if self.free_at.get(rep, self.now) > self.now or not self.piles[rep]:
            return  # busy (they look again when free) or nothing to do
        if rep in self.paused_until or not self.calendar.is_open(self.now):
            self.at(self.working(rep, self.now), "back", lambda: self.next_lead(rep))
            return
        _, _, pql_id = heapq.heappop(self.piles[rep])
        if self.rng.random() < PUT_ASIDE:
            gap, busy = timedelta(minutes=self.rng.uniform(60, 240)), 3 * MINUTE
        else:
            gap = busy = timedelta(minutes=self.rng.uniform(*WRITE))
        claimed = self.claim(pql_id, rep, gap)
        self.free_at[rep] = self.calendar.add(self.now, busy if claimed else MINUTE)
        self.at(self.free_at[rep], "free", lambda: self.next_lead(rep))

    def postponed(self, rep: str, what: str, again: Callable[[], None]) -> bool:
        """A rep who paused since this was planned does it after the pause."""
        if rep not in self.paused_until:
            return False
        self.at(self.working(rep, self.now), what, again)
        return True

    def claim(self, pql_id: int, rep: str, gap: timedelta) -> bool:
        claimed = []

        def work(session) -> None:  # noqa: ANN001
            pql = session.get(Pql, pql_id)
            if pql.rep_id != rep or pql.claimed_by:
                return  # moved or closed meanwhile
            leads.claim(session, pql, leads.actor(session, rep, manager=BOSS), now=self.now, tz=TZ, cap=CAP)
            self.at(self.working(rep, self.calendar.add(self.now, gap)), "touch", lambda: self.touch(pql_id, rep))
            claimed.append(pql_id)

        self.act(work, "claim")
        return bool(claimed)

    def touch(self, pql_id: int, rep: str) -> None:
        if self.postponed(rep, "touch", lambda: self.touch(pql_id, rep)):
            return

        def work(session) -> None:  # noqa: ANN001
            pql = session.get(Pql, pql_id)
            if pql.claimed_by != rep:
                return
            who = leads.actor(session, rep, manager=BOSS)
            leads.log_touch(session, pql, who, channel="email", email_key="email1", note=None, now=self.now)
            closes_in = timedelta(hours=self.rng.uniform(4, 36))  # 1-4 business days
            self.at(self.working(rep, self.calendar.add(self.now, closes_in)), "close", lambda: self.close(pql_id, rep))

        self.act(work, "touch")

    def close(self, pql_id: int, rep: str) -> None:
        if self.postponed(rep, "close", lambda: self.close(pql_id, rep)):
            return
        disposition = self.rng.choices([d for d, _ in DISPOSITIONS], weights=[w for _, w in DISPOSITIONS])[0]

        def work(session) -> None:  # noqa: ANN001
            pql = session.get(Pql, pql_id)
            if pql.claimed_by != rep or pql.disposition:
                return
            leads.set_disposition(session, pql, leads.actor(session, rep, manager=BOSS), disposition=disposition,
                                  reason="not a fit" if disposition == "disqualified" else None, now=self.now)

        self.act(work, "close")

    # -- the clock ----------------------------------------------------------------------------------------

    def run(self) -> None:
        self.plan()
        tick = local(0).astimezone(UTC)
        end = local(self.days).astimezone(UTC)
        while tick < end:
            tick += self.every
            while self.agenda and self.agenda[0][0] <= tick:
                when, _, _, action = heapq.heappop(self.agenda)
                self.now = when
                action()
                self.schedule_new_work()  # a lead routed as it arrived
            self.now = tick
            started = time.perf_counter()
            done = self.sweeps.run_due(tick)
            self.sweep_seconds += time.perf_counter() - started
            self.sweep_runs += 1
            self.sweep_failures.update(name for name, count in done.items() if count < 0)
            self.schedule_new_work()  # leads given out from the queue
            local_now = tick.astimezone(TZ)
            if local_now.hour == 23 and local_now.minute + self.every.seconds // 60 >= 60:
                with self.pipeline.session() as session:
                    self.queue_at_midnight[local_now.date()] = len(session.exec(
                        select(Pql.id).where(Pql.state == "queued")).all())


# -- the figures -------------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(pilot: Pilot, wall_s: float) -> int:
    calendar, tz = pilot.calendar, TZ
    with pilot.pipeline.session() as session:
        pqls = list(session.exec(select(Pql)))
        landed: dict[tuple[str, date], set[int]] = defaultdict(set)
        for a in session.exec(select(Assignment)):
            landed[(a.rep_id, a.at.astimezone(tz).date())].add(a.pql_id)
        reasons = Counter(a.reason for a in session.exec(select(Assignment)))
        first_touch = {}
        for touch in session.exec(select(Touch).order_by(Touch.at)):
            first_touch.setdefault(touch.pql_id, touch.at)
        notices = Counter(key.split(":", 1)[0] for key in session.exec(select(Notice.key)))

    print(f"pilot: {pilot.days} days from {START:%a %d %b %Y}, 2 reps, cap {CAP}, seed {pilot.seed}, "
          f"sweeps every {pilot.every.seconds // 60} min, SQLite")
    print()
    print("day         PQLs  Ana  Ben  queue@24h  notes")
    per_rep_max: Counter = Counter()
    for n in range(pilot.days):
        day = START + timedelta(days=n)
        counts = {rep: len(landed[(rep, day)]) for rep in (ANA, BEN)}
        for rep, count in counts.items():
            per_rep_max[rep] = max(per_rep_max[rep], count)
        notes = []
        if n in BURST_DAYS:
            notes.append("burst")
        notes += pilot.paused_days.get(day, [])
        print(f"{day:%a %d %b}  {pilot.arrivals[day]:4}  {counts[ANA]:3}  {counts[BEN]:3}  "
              f"{pilot.queue_at_midnight.get(day, 0):9}  {', '.join(notes)}".rstrip())
    print()
    total = len(pqls)
    print(f"PQLs recorded:           {total} (" + ", ".join(f"{t.replace('_', ' ')} {pilot.tiers[t]}"
                                                          for t, _ in TIERS) + ")")
    print("assignments by reason:   " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
    print("largest daily count:     " + ", ".join(f"{NAMES[rep]} {per_rep_max[rep]}" for rep in (ANA, BEN))
          + f" new PQLs (cap {CAP})")
    print(f"still queued at the end: {sum(1 for p in pqls if p.state == 'queued')}")
    escalations = {kind: notices.get(kind, 0) for kind in ("esc-here", "esc-2h", "esc-sla")}
    print("escalations:             " + ", ".join(f"{k} {v}" for k, v in escalations.items())
          + f" ({sum(escalations.values())} in all)")
    others = {k: v for k, v in notices.most_common() if k not in escalations}
    print("other notices:           " + ", ".join(f"{k} {v}" for k, v in others.items()))

    # SLA: from when pqlbot recorded the lead (its clock starts when business next opens) to the first touch.
    waits, within, by_tier = [], 0, defaultdict(lambda: [0, 0])
    untouched_late = 0
    end = local(pilot.days).astimezone(UTC)
    for pql in pqls:
        touched = first_touch.get(pql.id)
        if touched is None:
            if pql.sla_due_at and pql.sla_due_at < end:
                untouched_late += 1
                by_tier[pql.tier][1] += 1
            continue
        waits.append(calendar.elapsed(pql.created_at, touched).total_seconds() / 3600)
        ok = touched <= pql.sla_due_at
        within += ok
        by_tier[pql.tier][0] += ok
        by_tier[pql.tier][1] += 1
    judged = len(waits) + untouched_late
    share = within / judged if judged else 0.0
    print(f"time to first touch:     median {statistics.median(waits):.2f} h, p90 {percentile(waits, 0.9):.2f} h "
          f"(business hours, {len(waits)} leads touched)")
    print(f"within SLA:              {share:.1%} of {judged} leads due by the end "
          f"(target >= {TARGET_SLA_SHARE:.0%}: {'met' if share >= TARGET_SLA_SHARE else 'MISSED'}; "
          + ", ".join(f"{t.replace('_', ' ')} {SLA[t].seconds // 3600} h: {ok}/{n}"
                      for t, (ok, n) in sorted(by_tier.items())) + ")")
    if pilot.refusals:
        print("rep actions refused:     " + ", ".join(f"{k} {v}" for k, v in pilot.refusals.items()))
    failures = ", ".join(f"{k} {v}" for k, v in pilot.sweep_failures.items()) or "none"
    print(f"sweeps:                  {pilot.sweep_runs} runs, {pilot.sweep_seconds:.1f} s "
          f"({1000 * pilot.sweep_seconds / max(pilot.sweep_runs, 1):.1f} ms each); failed: {failures}")
    print(f"wall time:               {wall_s:.1f} s (target < {TARGET_WALL_S:g} s)")
    worst = max(per_rep_max.values(), default=0)
    if worst > CAP:
        print(f"FAIL: a rep got {worst} new PQLs in one day, over the cap of {CAP}")
        return 1
    print(f"OK: no rep ever got more than {CAP} new PQLs in a day (largest: {worst})")
    return 1 if pilot.sweep_failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--every", type=int, default=15, help="minutes between sweeps (default 15)")
    args = parser.parse_args()
    started = time.perf_counter()
    pilot = Pilot(args.seed, args.days, timedelta(minutes=args.every))
    try:
        pilot.run()
        return report(pilot, time.perf_counter() - started)
    finally:
        pilot.pipeline.engine.dispose()
        pilot.tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
