"""`/pql pause-all` and `/pql resume-all` in Slack: the manager's rollback switch, and the App Home banner."""

from __future__ import annotations

import json
from datetime import datetime

from bot.slack.ids import Command
from tests.scoring.builders import NY
from tests.slack.conftest import ANA, BOSS
from tests.slack.test_app import home_for

BANNER = "PQL routing is paused for the whole team"


def test_a_rep_cannot_pause_routing_for_the_team(workspace):
    workspace.command(ANA, Command.PQL, "pause-all")
    assert "Only the sales manager can pause or resume routing for the whole team." in workspace.said()[-1]
    assert BANNER not in json.dumps(home_for(workspace, ANA))


def test_the_manager_pauses_routing_and_every_app_home_says_so_until_resumed(workspace):
    workspace.command(BOSS, Command.PQL, "pause-all")
    assert "Routing is paused for the whole team" in workspace.said()[-1]
    pql_id = workspace.lead()
    assert workspace.pql(pql_id).rep_id is None  # recorded and alerted, given to nobody
    for user in (ANA, BOSS):
        assert f"{BANNER}* (by <@{BOSS}>" in json.dumps(home_for(workspace, user), ensure_ascii=False)
    workspace.command(BOSS, Command.PQL, "resume-all")
    assert "Routing is back on" in workspace.said()[-1]
    assert BANNER not in json.dumps(home_for(workspace, ANA), ensure_ascii=False)


def test_help_lists_the_rollback_switch(workspace):
    workspace.command(ANA, Command.PQL, "help")
    assert "/pql pause-all" in workspace.said()[-1]


def test_the_manager_resumes_outreach_after_the_complaints_guardrail_and_a_rep_cannot(workspace):
    workspace.command(ANA, Command.PQL, "resume-outreach")
    assert "Only the sales manager can pause or resume outreach." in workspace.said()[-1]
    workspace.command(BOSS, Command.PQL, "pause-outreach")
    assert "Outreach is paused" in workspace.said()[-1]
    workspace.command(BOSS, Command.PQL, "resume-outreach")
    assert "Outreach is back on" in workspace.said()[-1]


def test_resume_all_says_the_unclaimed_leads_clocks_did_not_count_the_pause(workspace):
    workspace.command(BOSS, Command.PQL, "pause-all")  # Friday 15:00
    assert "the pause does not count against their first-touch clocks" in workspace.said()[-1]
    pql_id = workspace.lead()
    assert "unclaimed leads' SLA clocks don't count the pause" in json.dumps(home_for(workspace, BOSS))
    workspace.now = datetime(2026, 11, 9, 10, 0, tzinfo=NY)  # Monday 10:00: 3 h on Friday, 1 h today
    workspace.command(BOSS, Command.PQL, "resume-all")
    assert workspace.said()[-1].endswith("The business time routing was paused (up to 4 h) was added to the SLA "
                                         "clocks of 1 unclaimed lead, so they don't all escalate at once.")
    assert workspace.pql(pql_id).held_seconds == 4 * 3600  # its clocks do not count the pause
