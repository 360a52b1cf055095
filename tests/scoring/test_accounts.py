"""Accounts (seed 003's PQA): the users of one account judged together on the account triggers; one verdict for
the account, with its contact map, firmographics and what fired."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scoring import parse_event, score_users
from scoring.accounts import score_users_and_accounts
from scoring.result import Status, Tier
from tests.scoring.accounts_rules import account_rules
from tests.scoring.builders import NY, Trial

RULES = account_rules()
START = datetime(2026, 11, 2, 10, 0, tzinfo=NY)
_n = iter(range(10**6))


def call(kind: str, user: str, at: datetime, **fields) -> object:
    return parse_event({"type": kind, "userId": user, "timestamp": at.isoformat(), "messageId": f"a{next(_n)}",
                        **fields})


def team(count: int, *, domain: str = "acme.com", spacing: timedelta = timedelta(days=1), start: datetime = START,
         size: int | None = 800, prefix: str = "u") -> list:
    """`count` users of `domain` who sign up at `start` and activate one `spacing` after another."""
    events = []
    for i in range(count):
        user = f"{prefix}{i}"
        trial = Trial(user, email=f"{user}@{domain}", company="Acme Corp", size=size, signup=start,
                      first_name=f"Name{i}", title="Engineer")
        trial.add("activation_complete", start + timedelta(hours=1) + spacing * i)
        events += trial.events
    return events


def accounts(results) -> list:
    return [r for r in results if r.level == "account"]


def test_five_users_of_one_domain_activating_within_14_days_make_one_qualified_account():
    at = START + timedelta(days=20)
    results = score_users_and_accounts(team(5), RULES, at, tz=NY)
    [account] = accounts(results)
    assert account.status is Status.QUALIFIED and account.tier is Tier.HIGH and account.family == "buying"
    assert account.account.key == "domain:acme.com" and account.account.domain == "acme.com"
    [fired] = account.triggers
    assert fired.name == "team_activation" and fired.level == "account" and fired.response == 1
    assert set(fired.users) == {f"u{i}" for i in range(5)}
    assert fired.evidence == "5 users activated over 5 days"
    assert {c.user_id for c in account.users} == {f"u{i}" for i in range(5)}
    # It qualified at the fifth activation.
    assert account.qualified_at == (START + timedelta(hours=1) + timedelta(days=4)).astimezone(UTC)
    assert len(results) == 6  # the five users' own lines, then the account's


def test_the_14_days_hold_exactly_and_not_a_microsecond_more():
    exactly = team(5, spacing=timedelta(days=3, hours=12))  # first to fifth: 14 days
    over = team(5, spacing=timedelta(days=3, hours=12, microseconds=1) / 1)
    at = START + timedelta(days=30)
    assert accounts(score_users_and_accounts(exactly, RULES, at, tz=NY))[0].status is Status.QUALIFIED
    assert accounts(score_users_and_accounts(over, RULES, at, tz=NY)) == []


@pytest.mark.parametrize(("start", "hours", "fires"), [
    # Spring forward (America/New_York 2026-03-08): 14 local days hold 335 hours, inside the window.
    (datetime(2026, 3, 1, 10, 0, tzinfo=NY), 14 * 24 - 1, True),
    # Fall back (2026-11-01): 14 local days hold 337 hours, an hour more than the window.
    (datetime(2026, 10, 25, 10, 0, tzinfo=NY), 14 * 24 + 1, False),
])
def test_the_window_is_14_days_of_elapsed_time_across_a_dst_change(start, hours, fires):
    events = team(4, start=start, spacing=timedelta(hours=1))
    last = Trial("late", email="late@acme.com", company="Acme Corp", size=800, signup=start)
    first = events[1].at  # u0's activation, at 11:00 local on the first day
    last.add("activation_complete", datetime.combine(start.date() + timedelta(days=14), first.astimezone(NY).timetz()))
    assert last.events[-1].at - first == timedelta(hours=hours)  # 14 local days apart
    found = accounts(score_users_and_accounts(events + last.events, RULES, start + timedelta(days=20), tz=NY))
    assert bool(found) is fires


def test_events_arriving_out_of_order_make_the_same_account_verdict():
    events = team(5)
    at = START + timedelta(days=20)
    ordered = accounts(score_users_and_accounts(events, RULES, at, tz=NY))
    shuffled = accounts(score_users_and_accounts(list(reversed(events)), RULES, at, tz=NY))
    assert [a.to_json() for a in shuffled] == [a.to_json() for a in ordered]


def test_users_with_a_personal_email_are_never_pooled_into_an_account():
    events = []
    for i in range(6):
        trial = Trial(f"g{i}", email=f"g{i}@gmail.com", company=None, size=None)
        trial.add("activation_complete", START + timedelta(hours=i + 1))
        events += trial.events
    results = score_users_and_accounts(events, RULES, START + timedelta(days=3), tz=NY)
    assert accounts(results) == []
    assert all(r.account.key is None for r in results)


def test_a_group_id_beats_the_email_domain():
    events = team(3, domain="acme.com") + team(2, domain="acme-labs.io", prefix="l")
    for user in ("u0", "u1", "u2", "l0", "l1"):
        events.append(call("group", user, START + timedelta(minutes=5), groupId="g-acme",
                           traits={"name": "Acme Group", "employees": 3000, "industry": "Fintech"}))
    # Another acme.com user in a group of their own is not pooled with them.
    other = Trial("x", email="x@acme.com", company="Acme Corp", size=800)
    other.add("activation_complete", START + timedelta(hours=2))
    events += [*other.events, call("group", "x", START + timedelta(minutes=5), groupId="g-other")]
    results = score_users_and_accounts(events, RULES, START + timedelta(days=20), tz=NY)
    [account] = accounts(results)
    assert account.account.key == "group:g-acme"
    assert {c.user_id for c in account.users} == {"u0", "u1", "u2", "l0", "l1"}
    # Firmographics from the group's traits: its size, band and name.
    assert account.company_size == 3000 and str(account.band) == "enterprise"
    assert account.account.company_name == "Acme Group"
    assert next(r for r in results if r.user_id == "x").account.key == "group:g-other"


def test_a_competitor_account_is_excluded_whatever_fired():
    rules = account_rules()
    rules = rules.model_copy(update={"exclusions": rules.exclusions.model_copy(
        update={"competitor_domains": frozenset({"acme.com"})})})
    [account] = accounts(score_users_and_accounts(team(5), rules, START + timedelta(days=20), tz=NY))
    assert account.status is Status.EXCLUDED and account.tier is None
    assert [r.code for r in account.reasons] == ["competitor_domain"]


def test_an_account_where_everyone_opted_out_has_nobody_to_talk_to():
    events = team(5)
    for i in range(5):
        events.append(call("track", f"u{i}", START + timedelta(days=6), event="sales_opt_out", properties={}))
    [account] = accounts(score_users_and_accounts(events, RULES, START + timedelta(days=20), tz=NY))
    assert account.status is Status.EXCLUDED
    assert "nobody to talk to" in account.reasons[0].detail


def test_seats_and_invite_domains_fire_their_account_triggers_with_evidence():
    admin = Trial("admin", email="admin@acme.com", company="Acme Corp", size=800)
    admin.add("seats_provisioned", START + timedelta(days=1), count=6)
    admin.add("seats_provisioned", START + timedelta(days=7, minutes=59), count=4)
    for n, who in enumerate(["a@one.com", "b@two.com", "c@three.com"]):
        admin.add("invite_sent", START + timedelta(days=2, hours=n), invitee_email=who)
    [account] = accounts(score_users_and_accounts(admin.events, RULES, START + timedelta(days=9), tz=NY))
    fired = {t.name: t for t in account.triggers}
    assert fired["seat_surge"].evidence == "provisioned 10 seats over 2 days"
    assert fired["multi_domain_invites"].evidence == "invited people at one.com, two.com and three.com"
    assert account.tier is Tier.HIGH  # the seat surge is tier 1


def test_the_json_account_line_carries_its_users_and_triggers():
    [account] = accounts(score_users_and_accounts(team(5), RULES, START + timedelta(days=20), tz=NY))
    line = json.loads(json.dumps(account.to_json()))
    assert line["level"] == "account" and line["account"]["key"] == "domain:acme.com"
    assert line["triggers"][0]["users"] and line["family"] == "buying"
    first = line["users"][0]
    assert set(first) == {"user_id", "name", "email", "title", "last_active", "did", "status", "opted_out"}
    assert first["user_id"] == line["user_id"] and first["title"] == "Engineer" and "activated" in first["did"]


def test_without_accounts_asked_for_score_users_gives_the_users_only():
    assert accounts(score_users(team(5), RULES, START + timedelta(days=20), tz=NY)) == []


def test_a_users_verdict_names_their_account():
    [user] = score_users(team(1), RULES, START + timedelta(days=2), tz=ZoneInfo("UTC"))
    assert user.account.key == "domain:acme.com"
