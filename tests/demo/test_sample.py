"""The bundled sample (bot/data/sample_events.jsonl) says what bot/demo/sample.py's docstring says it does."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.demo import sample
from scoring import Status, Tier, load_rules, parse_event, score_users
from scoring.events import CANONICAL_EVENTS

TZ = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return sample.SAMPLE_PATH.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def events(lines, rules):
    return [parse_event(line, rules) for line in lines]


@pytest.fixture(scope="module")
def results(events, rules):
    return {r.user_id: r for r in score_users(events, rules, sample.SAMPLE_AS_OF, tz=TZ)}


def test_every_line_is_a_valid_track_event(lines, rules):
    problems = []
    for number, line in enumerate(lines, start=1):
        try:
            parse_event(line, rules)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
        call = json.loads(line)
        if list(call) != ["type", "event", "userId", "timestamp", "messageId", "properties"]:
            problems.append(f"line {number}: keys {list(call)}")
        if call["type"] != "track" or not call["timestamp"].endswith("Z"):
            problems.append(f"line {number}: not a UTC track call")
    assert not problems
    assert len(lines) > 300


def test_message_ids_are_unique_and_the_stream_is_in_time_order(lines):
    calls = [json.loads(line) for line in lines]
    ids = [c["messageId"] for c in calls]
    assert len(set(ids)) == len(ids)
    keys = [(c["timestamp"], c["messageId"]) for c in calls]
    assert keys == sorted(keys)


def test_timeline_fits_the_story(events):
    local = [e.at.astimezone(TZ) for e in events]
    assert min(local).date().isoformat() == "2026-11-02"
    assert max(local) < datetime(2026, 11, 15, tzinfo=TZ)
    signup_days = {e.at.astimezone(TZ).day for e in events if e.name == "signup_complete"}
    assert signup_days <= {2, 3, 4, 5, 6}
    working = sum(9 <= t.hour < 18 for t in local)
    assert working / len(local) > 0.85  # mostly working hours, a few evenings


def test_aliases_are_exercised_and_map_to_canonical_names(lines, events):
    sent = Counter(json.loads(line)["event"] for line in lines)
    assert {"Invite Sent", "Page Viewed", "Signed Up"} <= set(sent)
    assert {e.name for e in events} <= CANONICAL_EVENTS


def test_about_fifty_users(results):
    assert 45 <= len(results) <= 55
    assert sample.SAMPLE_TZ.key == "America/New_York"


def test_sarah_is_the_seed_example(results):
    sarah = results["sarah"]
    assert (sarah.status, sarah.tier, sarah.score) == (Status.QUALIFIED, Tier.MEDIUM, 6)
    points = {s.name for s in sarah.signals if s.points}
    assert points == {"invites", "integration"}
    assert sarah.email == "sarah@acme.com"
    assert sarah.company_size == 800
    assert sarah.profile.name == "Sarah Chen"


def test_tom_is_excluded_on_company_size(results):
    tom = results["tom"]
    assert tom.status is Status.EXCLUDED
    assert [r.code for r in tom.reasons] == ["company_size_out_of_range"]


@pytest.mark.parametrize("user_id", sorted(sample.expected_outcomes()))
def test_named_user_has_its_intended_outcome(results, user_id):
    status, tier = sample.expected_outcomes()[user_id]
    result = results[user_id]
    assert (result.status, result.tier) == (status, tier)
    if user_id in sample.expected_reasons():
        assert sample.expected_reasons()[user_id] in {r.code for r in result.reasons}


def test_named_scores_from_the_docstring(results):
    scores = {"sarah": 6, "grace": 4, "owen": 5, "aisha": 5, "ben": 5, "elena": 10, "raj": 8, "nina": 8}
    assert {user: results[user].score for user in scores} == scores


def test_streaming_stories(events, rules):
    """Ben crosses the threshold mid-stream; Nina goes from medium to high days later."""

    def as_of(user_id, text):
        at = datetime.fromisoformat(text).replace(tzinfo=TZ)
        mine = [e for e in events if e.user_id == user_id]
        (result,) = score_users(mine, rules, at, tz=TZ)
        return result.status, result.tier

    assert as_of("ben", "2026-11-09T18:00") == (Status.BELOW_THRESHOLD, None)
    assert as_of("ben", "2026-11-10T18:00") == (Status.QUALIFIED, Tier.MEDIUM)
    assert as_of("nina", "2026-11-04T18:00") == (Status.QUALIFIED, Tier.MEDIUM)
    assert as_of("nina", "2026-11-09T18:00") == (Status.QUALIFIED, Tier.MEDIUM)
    assert as_of("nina", "2026-11-10T18:00") == (Status.QUALIFIED, Tier.HIGH)


def test_a_realistic_share_qualifies(results):
    qualified = sum(r.status is Status.QUALIFIED for r in results.values())
    assert 0.15 <= qualified / len(results) <= 0.40


def test_regenerating_gives_the_committed_file():
    assert sample.render().encode("utf-8") == sample.SAMPLE_PATH.read_bytes()
