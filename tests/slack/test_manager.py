"""The manager's escalation DMs in Slack: valid Block Kit, and the Reassign, Claim-for and Release buttons on them,
driven end to end (signed requests in, Web API calls to the stand-in out, the store in between)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View as SlackView

from bot.services import audit
from bot.services.routing import Router
from bot.slack.blocks.manager import Card, card_blocks, reminder_blocks, rep_modal
from bot.slack.blocks.notices import render_notice
from bot.slack.ids import Action, Input, LeadRef, View
from bot.store.models import Pql
from bot.sweeps.runner import Sweeps, default_steps
from tests.scoring.builders import NY, Trial
from tests.slack.conftest import ANA, BEN, BOSS, Workspace

WED = datetime(2026, 11, 4, 10, 0, tzinfo=NY)
BOSS_DM = f"D{BOSS}"


class Office:
    """The Slack workspace with routing on and the SLA sweeps at hand."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        settings = workspace.settings
        workspace.pipeline.router = Router(settings.calendar, cap=settings.pql_daily_cap, manager=BOSS)
        self.sweeps = Sweeps(workspace.pipeline, workspace.pipeline.router, settings, steps=default_steps(
            "escalate", "follow_ups", "stale_claims", "guardrail"))

    def lead(self, user: str = "sarah") -> int:
        trial = Trial(user, email=f"{user}@acme.com", first_name=user.capitalize(),
                      signup=datetime(2026, 10, 31, 9, 0, tzinfo=NY)).activate(1).invite(2).integrate(2)
        return self.ws.lead(user, trial)

    def sweep_at(self, at: datetime) -> None:
        self.ws.now = at
        self.sweeps.run_due(at)
        self.ws.deliver()

    def dms_to_boss(self) -> list[dict]:
        return [{"text": m.text, "blocks": _json(m.blocks)} for m in self.ws.standin.history(BOSS_DM) if not m.user]

    def click(self, user: str, action: Action, pql_id: int):
        """A button clicked in the DM the manager got (the harness clicks in the alerts channel)."""
        dm = f"D{user}"
        payload = {
            "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
            "api_app_id": "A0PQLBOT", "token": "legacy", "team": {"id": "T0TEAM", "domain": "acme"},
            "trigger_id": f"{user}.{action}.trigger",
            "container": {"type": "message", "message_ts": "1700000000.000200", "channel_id": dm},
            "channel": {"id": dm, "name": "directmessage"},
            "message": {"ts": "1700000000.000200", "text": "escalation"},
            "actions": [{"type": "button", "action_id": str(action), "block_id": "b",
                         "value": LeadRef(pql_id=pql_id).encode(), "action_ts": "1700000000.2"}],
        }
        return self.ws.signed(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    def pick(self, user: str, callback: View, pql_id: int, rep: str | None):
        chosen = {"type": "static_select", "selected_option": {"value": rep} if rep else None}
        return self.ws.submit(user, callback, pql_id, {Input.REP: {Input.REP: chosen}})

    def opened(self) -> list[dict]:
        return [_json(c.params["view"]) for c in self.ws.standin.calls_to("views.open")]

    def told(self, user: str) -> list[str]:
        return [c.params["text"] for c in self.ws.standin.calls_to("chat.postEphemeral") if c.params["user"] == user]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def office(engine, standin):
    return Office(Workspace(engine, standin, WED))


def buttons(blocks: list[dict]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def validate_blocks(blocks: list[dict]) -> None:
    for block in Block.parse_all(blocks):
        block.validate_json()


def options(view: dict) -> dict[str, str]:
    [select_] = [b["element"] for b in view["blocks"] if b.get("block_id") == Input.REP]
    return {o["value"]: o["text"]["text"] for o in select_["options"]}


def pql(office: Office, pql_id: int) -> Pql:
    return office.ws.pql(pql_id)


# The DM ----------------------------------------------------------------------------------------------------

def test_the_escalation_dm_reaches_the_manager_with_valid_blocks_and_the_facts(office):
    pql_id = office.lead()
    holder = pql(office, pql_id).rep_id
    office.sweep_at(WED + 4 * timedelta(hours=1) + timedelta(minutes=35))  # medium: SLA at 14:00
    [dm] = office.dms_to_boss()
    validate_blocks(dm["blocks"])
    text = json.dumps(dm["blocks"])
    for expected in (f"PQL-{pql_id}", "Sarah", "Acme Corp", "Medium", f"<@{holder}> (assigned, not claimed)",
                     "SLA missed by 35 min"):
        assert expected in text
    assert f"PQL-{pql_id} missed its first-touch SLA" in dm["text"]
    assert buttons(dm["blocks"]) == [Action.REASSIGN, Action.CLAIM_FOR, Action.DETAILS]
    thread = [m.text for m in office.ws.standin.history("C0ALERTS") if m.thread_ts]
    assert any(t.startswith("<!here>") for t in thread)  # the @here landed in the alert's thread


@pytest.mark.parametrize("card", [
    Card(pql_id=4, ref="PQL-4", who="Sarah Chen", company="Acme &amp; Co", tier="high", heading="🚨 PQL-4 missed",
         holder="Nobody", late="SLA missed by 35 min", claimed=False),
    Card(pql_id=4, ref="PQL-4", who="x" * 3000, company=None, tier="fast_lane", heading="h" * 4000,
         holder=f"<@{ANA}> (claimed)", late="Claimed 1 business day ago", claimed=True, stale=True,
         note="n" * 5000),
])
def test_escalation_blocks_validate_whatever_the_lead(card):
    blocks = card_blocks(card)
    validate_blocks(blocks)
    assert buttons(blocks)[0] == (Action.RELEASE if card.stale else Action.REASSIGN)


def test_reminders_and_rep_modals_validate():
    validate_blocks(reminder_blocks("Email 2 is due for PQL-4", 4, ask_disposition=False))
    validate_blocks(reminder_blocks("Set a disposition", 4, ask_disposition=True))
    modal = rep_modal(View.REASSIGN, pql_id=4, title="Reassign PQL-4", intro="Move it", submit="Reassign",
                      reps={ANA: "Ana Ruiz · 0 of 5 new today", BEN: "Ben Okafor · 5 of 5 new today · paused"})
    SlackView(**modal).validate_json()


def test_a_typed_notice_renders_as_its_builder_does_and_an_unknown_view_is_refused():
    card = {"view": "manager_card", "pql_id": 4, "ref": "PQL-4", "who": "Sarah", "company": None, "tier": "high",
            "heading": "⏰ PQL-4 is still unclaimed", "holder": "Nobody", "late": "Unclaimed for 2 h", "claimed": False,
            "stale": False, "note": None}
    assert render_notice(card, "text") == card_blocks(Card(**{k: v for k, v in card.items() if k != "view"}))
    reminder = {"view": "reminder", "pql_id": 4, "ask_disposition": True}
    assert render_notice(reminder, "Set one") == reminder_blocks("Set one", 4, ask_disposition=True)
    validate_blocks(render_notice({"view": "note"}, "Guardrail: PQL volume"))
    with pytest.raises(ValueError, match="unknown notice view"):
        render_notice({"view": "poster"}, "text")


# Reassign ---------------------------------------------------------------------------------------------------

def test_the_manager_reassigns_from_the_dm_through_a_modal_of_the_other_reps(office):
    pql_id = office.lead()
    holder = pql(office, pql_id).rep_id
    other = BEN if holder == ANA else ANA
    office.sweep_at(WED + 2 * timedelta(hours=1))
    assert office.click(BOSS, Action.REASSIGN, pql_id).status_code == 200
    [view] = office.opened()
    SlackView(**view).validate_json()
    assert view["callback_id"] == View.REASSIGN and LeadRef.decode(view["private_metadata"]).pql_id == pql_id
    assert list(options(view)) == [other]  # not the rep who has it already
    assert options(view)[other].startswith("Ana Ruiz" if other == ANA else "Ben Okafor")
    response = office.pick(BOSS, View.REASSIGN, pql_id, other)
    assert response.status_code == 200 and not response.content  # a plain ack closes the modal
    assert pql(office, pql_id).rep_id == other
    office.ws.deliver()
    thread = [m.text for m in office.ws.standin.history("C0ALERTS")]
    assert f"<@{BOSS}> reassigned PQL-{pql_id} to <@{other}>." in thread


def test_a_rep_clicking_reassign_is_refused_privately_and_no_modal_opens(office):
    pql_id = office.lead()
    office.click(ANA, Action.REASSIGN, pql_id)
    assert office.opened() == []
    assert office.told(ANA) == ["Only the sales manager can reassign leads."]


def test_a_forged_reassign_submission_from_a_rep_is_refused_in_the_modal(office):
    pql_id = office.lead()
    holder = pql(office, pql_id).rep_id
    response = office.pick(ANA, View.REASSIGN, pql_id, BEN if holder == ANA else ANA)
    answer = response.json()
    assert answer["response_action"] == "errors" and "Only the sales manager" in answer["errors"][Input.REP]
    assert pql(office, pql_id).rep_id == holder


def test_submitting_without_a_rep_asks_for_one(office):
    pql_id = office.lead()
    answer = office.pick(BOSS, View.REASSIGN, pql_id, None).json()
    assert answer == {"response_action": "errors", "errors": {Input.REP: "Pick a rep."}}


# Claim for someone -------------------------------------------------------------------------------------------

def test_the_manager_claims_for_a_rep_past_their_cap(office):
    office.ws.settings.pql_daily_cap = 1
    first, second = office.lead("u1"), office.lead("u2")
    holder = pql(office, first).rep_id
    office.click(BOSS, Action.CLAIM_FOR, second)
    [view] = office.opened()
    SlackView(**view).validate_json()
    assert view["callback_id"] == View.CLAIM_FOR and set(options(view)) == {ANA, BEN}
    assert "1 of 1 new today" in options(view)[holder]
    assert office.pick(BOSS, View.CLAIM_FOR, second, holder).status_code == 200
    lead = pql(office, second)
    assert (lead.claimed_by, lead.rep_id, lead.state) == (holder, holder, "claimed")
    with office.ws.pipeline.session() as session:
        [claimed] = [e for e in audit.trail(session, pql_id=second) if e.action == "pql_claimed"]
    assert (claimed.actor, claimed.detail["rep"], claimed.detail["on_behalf"]) == (BOSS, holder, True)


def test_a_rep_clicking_claim_for_is_refused_privately(office):
    pql_id = office.lead()
    office.click(BEN, Action.CLAIM_FOR, pql_id)
    assert office.opened() == []
    assert office.told(BEN) == ["Only the sales manager can claim a lead on someone's behalf."]
    assert pql(office, pql_id).claimed_by is None


def test_claim_for_on_a_lead_claimed_meanwhile_says_who_has_it(office):
    pql_id = office.lead()
    holder = pql(office, pql_id).rep_id
    office.ws.click(holder, Action.CLAIM, pql_id)
    office.click(BOSS, Action.CLAIM_FOR, pql_id)
    assert office.opened() == []
    assert office.told(BOSS) == [f"PQL-{pql_id} is already claimed by <@{holder}>."]


# Release (stale claims) ---------------------------------------------------------------------------------------

def test_a_stale_claim_dm_has_a_release_button_that_releases_the_lead(office):
    pql_id = office.lead()
    holder = pql(office, pql_id).rep_id
    office.ws.click(holder, Action.CLAIM, pql_id)
    office.sweep_at(WED + timedelta(days=1))  # Thursday 10:00: a business day since the claim
    stale = [dm for dm in office.dms_to_boss() if "sits claimed and untouched" in dm["text"]]
    assert len(stale) == 1
    validate_blocks(stale[0]["blocks"])
    assert buttons(stale[0]["blocks"]) == [Action.RELEASE, Action.REASSIGN, Action.DETAILS]
    assert office.click(BOSS, Action.RELEASE, pql_id).status_code == 200
    lead = pql(office, pql_id)
    assert (lead.claimed_by, lead.rep_id, lead.state) == (None, None, "queued")
    assert office.told(BOSS) == [f"Released PQL-{pql_id}: it's back in the queue and will be assigned again."]


def test_a_rep_clicking_release_is_refused_privately(office):
    pql_id = office.lead()
    holder = pql(office, pql_id).rep_id
    office.ws.click(holder, Action.CLAIM, pql_id)
    office.click(holder, Action.RELEASE, pql_id)
    assert pql(office, pql_id).claimed_by == holder
    assert office.told(holder) == ["Only the sales manager can release leads."]


def test_buttons_on_a_closed_lead_say_so(office):
    pql_id = office.lead()
    with office.ws.pipeline.session() as session, session.begin():
        session.get(Pql, pql_id).state = "dispositioned"
    office.click(BOSS, Action.REASSIGN, pql_id)
    assert office.opened() == []
    assert office.told(BOSS) == [f"PQL-{pql_id} is closed (dispositioned), so there is nothing left to do on it."]

