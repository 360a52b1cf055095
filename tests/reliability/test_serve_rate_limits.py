"""`pqlbot serve` against a Slack that rate-limits the alerts channel: the reps' DMs and their claims go through at
once, the channel is not asked again before its Retry-After has passed, and its alerts follow as soon as it opens,
each once. A short limit (4 s) on the real clock; tests/slack/test_rate_limits.py covers a minute on a test clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from bot.store import make_engine
from tests.reliability.conftest import (
    REPS,
    alert_times,
    check_store_and_slack,
    click_claim,
    drained,
    rows,
    send_batch,
    team_zone,
    trial_batch,
    wait_until,
)
from tests.standin import ALERTS_CHANNEL_ID

LIMIT = 4.0  # seconds Slack limits the alerts channel for


@pytest.mark.slow
def test_a_rate_limited_alerts_channel_holds_back_only_its_alerts_in_a_serve_process(database_url, slack, serves):
    zone, business_open = team_zone()
    users = [f"held{n}" for n in range(5)]
    now = datetime.now(UTC)
    one_batch = {"batch": [call for user in users for call in trial_batch(user, now=now, run="held")["batch"]]}
    slack.clock = time.time
    serve = serves("serve", database_url=database_url, slack=slack, zone=zone).start().ready()
    engine = make_engine(database_url)
    try:
        slack.limit(ALERTS_CHANNEL_ID, LIMIT)  # 429 with the Retry-After left, to every post in the channel
        opens = time.time() + LIMIT
        assert send_batch(serve.port, one_batch) == 200
        wait_until(lambda: rows(engine, "SELECT id, rep_id FROM pqls"), timeout=10, what="the leads")
        [(pql_id, rep)] = rows(engine, "SELECT id, rep_id FROM pqls ORDER BY id LIMIT 1")
        rep = rep or next(iter(REPS))
        assert click_claim(serve.port, slack, pql_id, rep) == 200
        claimed = wait_until(lambda: rows(engine, "SELECT claimed_by FROM pqls WHERE id = :id AND claimed_by IS NOT "
                                                  "NULL", id=pql_id), timeout=opens - time.time(), every=0.05,
                             what="the claim stored while the channel is limited")
        assert claimed[0].claimed_by == rep and time.time() < opens
        if business_open:  # the reps' assignment DMs went out while the channel was still limited
            wait_until(lambda: sum(len(slack.history(f"D{r}")) for r in REPS) == len(users),
                       timeout=opens - time.time(), every=0.05, what="the assignment DMs, before the channel opens")
            assert time.time() < opens

        wait_until(lambda: drained(engine, len(users)), timeout=30, every=0.1, what="the alerts, once it opens")
        report = check_store_and_slack(engine, slack, users, business_open=business_open,  # each alert once
                                       claimed=frozenset({pql_id}))
        posted = alert_times(slack)
        assert sorted(posted) == sorted(p.id for p in rows(engine, "SELECT id FROM pqls"))
        assert all(len(times) == 1 and times[0] >= opens - 0.05 for times in posted.values())
        last_alert_after_opening = max(times[0] for times in posted.values()) - opens
        assert last_alert_after_opening < 5  # when it opens, not at the deliverer's next 15-second round
        limited = [c for c in slack.calls_to("chat.postMessage")
                   if c.params.get("channel") == ALERTS_CHANNEL_ID and c.status == 429]
        assert len(limited) == 1  # Slack was not asked again before the Retry-After it gave
        [(thread,)] = rows(engine, "SELECT count(*) FROM notices WHERE kind = 'reply' AND state = 'sent'")
        assert thread == 1  # the claim's reply went into the alert's thread when the channel opened
        serve.stop()
        assert "Traceback" not in serve.log(), serve.log()[-3000:]
    finally:
        engine.dispose()
    store = database_url.split(":", 1)[0].split("+")[0]
    print(f"\n{store}: alerts channel limited {LIMIT:.0f} s; last alert {last_alert_after_opening:.2f} s after it "
          f"opened; 429s from the channel: {len(limited)}; {report}")
