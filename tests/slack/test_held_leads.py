"""A lead on a do-not-touch hold in Slack: its alert offers no Claim and no Log touch, a rep clicking an older
Claim or Log touch button or typing `/claim PQL-n` is told it is on hold and why, a bare `/claim` passes it by, and
the manager's `/claim PQL-n @rep` still gives it out. Both stores."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time

from bot.slack.ids import Action, Command
from tests.slack.conftest import ANA, BOSS, Workspace
from tests.sweeps.test_holds import event

HELD = "is on hold: they have a support ticket open. Don't reach out for now; it comes back when the hold ends."


def buttons(ws: Workspace, pql_id: int) -> list[str]:
    with ws.pipeline.session() as session:
        _, blocks = ws.server.runtime.render_alert(session, pql_id)
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def ticket(ws: Workspace, name: str = "support_ticket_opened") -> None:
    ws.now += timedelta(minutes=10)
    with freeze_time(ws.now):
        ws.pipeline.ingest([event("sarah", name, ws.now, ticket_id="T1")], at=ws.now)
    ws.deliver()


def test_a_held_lead_s_alert_offers_no_claim_and_a_rep_is_told_why_it_cannot_be_claimed(workspace):
    pql_id = workspace.lead()
    assert buttons(workspace, pql_id)[0] == Action.CLAIM
    ticket(workspace)
    assert buttons(workspace, pql_id) == [Action.DETAILS]
    workspace.click(ANA, Action.CLAIM, pql_id)  # a button from before the hold
    workspace.command(ANA, Command.CLAIM, f"PQL-{pql_id}")
    workspace.command(ANA, Command.CLAIM)
    assert workspace.said()[-3:] == [f"PQL-{pql_id} {HELD}", "No unclaimed leads are waiting for you right now.",
                                     f"PQL-{pql_id} {HELD}"]  # the ephemeral is listed after the responses
    assert workspace.pql(pql_id).claimed_by is None
    ticket(workspace, "support_ticket_closed")
    assert buttons(workspace, pql_id)[0] == Action.CLAIM  # back on: Claim again


def test_a_claimed_lead_on_hold_offers_no_log_touch_and_the_manager_may_still_claim_one_for_a_rep(workspace):
    claimed = workspace.lead()
    workspace.click(ANA, Action.CLAIM, claimed)
    assert Action.LOG_TOUCH in buttons(workspace, claimed)
    ticket(workspace)
    assert Action.LOG_TOUCH not in buttons(workspace, claimed) and Action.SET_DISPOSITION in buttons(workspace, claimed)
    workspace.click(ANA, Action.LOG_TOUCH, claimed)
    assert workspace.said()[-1] == f"PQL-{claimed} {HELD}"
    assert workspace.standin.calls_to("views.open") == []


def test_the_manager_claims_a_held_lead_for_a_rep_and_the_thread_says_it_was_an_override(workspace):
    pql_id = workspace.lead()
    ticket(workspace)
    workspace.command(BOSS, Command.CLAIM, f"PQL-{pql_id} <@{ANA}|ana>")
    assert workspace.pql(pql_id).claimed_by == ANA
    workspace.deliver()
    thread = [m.text for m in workspace.standin.history("C0ALERTS") if m.thread_ts]
    assert any("It's on hold (a support ticket is open): the manager gave it anyway" in t for t in thread)
