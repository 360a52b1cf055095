"""`pqlbot example [--day N] [--at T]`: the README's worked example (the seed's Sarah) as JSON lines dated so that
it answers today: her signup is four days back, so her day 5 (activation, two invites, dbt) is today."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from bot.cli.common import moment
from bot.settings import Settings

#: Sarah's calls: (trial day, local time, event, properties). Day 1 is her signup date in PQL_TIMEZONE.
SARAH = [
    (1, "09:05", "signup_complete", {"email": "sarah@acme.com", "company_name": "Acme Corp", "company_size": 800,
                                     "first_name": "Sarah", "last_name": "Chen", "title": "Data Engineer"}),
    (5, "09:10", "activation_complete", {"activation_type": "first_source_connected"}),
    (5, "10:00", "invite_sent", {"invitee_email": "li@acme.com"}),
    (5, "10:02", "invite_sent", {"invitee_email": "raj@acme.com"}),
    (5, "14:30", "integration_connected", {"integration_type": "dbt"}),
]


def add(example: argparse.ArgumentParser, name: str) -> None:
    example.description = (
        "Print the seed's Sarah as Segment track calls (JSON lines), dated in PQL_TIMEZONE so that her day 5 "
        "(activation, two invites, dbt: 6 points, medium) is today: pipe them into `pqlbot ingest -`, or post them to "
        "/v1/batch, and she qualifies now rather than in a trial long over.")
    example.add_argument("--at", type=moment, help="the moment her day 5 ends (default now); only calls up to it are "
                         "printed")
    example.set_defaults(run=run)


def events(*, now: datetime, tz) -> list[dict]:  # noqa: ANN001 - a tzinfo
    """Sarah's calls, her day 5 being `now`'s local date, and none later than `now`."""
    signup_day = now.astimezone(tz).date() - timedelta(days=4)
    calls = []
    for number, (day, clock, name, properties) in enumerate(SARAH, start=1):
        hour, minute = (int(part) for part in clock.split(":"))
        at = datetime(signup_day.year, signup_day.month, signup_day.day, hour, minute, tzinfo=tz) + timedelta(
            days=day - 1)
        if day == 5:  # today: squeezed before `now`, in order, however early today it is
            today = now.astimezone(tz).replace(second=0, microsecond=0)
            at = min(at, today - timedelta(minutes=len(SARAH) - number))
        calls.append({"type": "track", "event": name, "userId": "sarah", "messageId": f"sarah-{number:03d}",
                      "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"), "properties": properties})
    return calls


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.clock import utc_now

    for call in events(now=args.at or utc_now(), tz=settings.tz):
        print(json.dumps(call, separators=(",", ":")))
    return 0
