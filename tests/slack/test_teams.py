"""Teams in Slack (PQL_TEAMS_FILE): the alert and `/pql why` say which row of the routing matrix chose the team and
why that rep; `/pql handoff` hands a lead to another team; App Home shows the manager each team. Both stores."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from bot.services import leads
from bot.services.routing import Router
from bot.slack.ids import Action, Command, View
from bot.store.models import Notice
from tests.scoring.builders import NY, Trial
from tests.slack.conftest import ANA, BEN, BOSS, CHANNEL, Workspace
from tests.slack.test_app import home_for

FAY, GUS = "U0FAY", "U0GUS"
FAST_LANE_CHANNEL = "C0FASTLANE"
TEAMS = f"""
default = "sdr"

[teams.sdr]
label = "SDR pool"
escalate_to = "{BOSS}"
members = [{{ id = "{ANA}", name = "Ana Ruiz" }}, {{ id = "{BEN}", name = "Ben Okafor" }}]

[teams.desk]
label = "Fast-lane desk"
escalate_to = "{BOSS}"
alert_channel = "#fast-lane"
members = [{{ id = "{FAY}", name = "Fay Quinn" }}]

[teams.cs]
label = "Customer success"
daily_cap = 8
members = [{{ id = "{GUS}", name = "Gus Lind" }}]
[teams.cs.handoff]
when = "routed_to_cs"

[[routes]]
why = "demo / contact-sales request: the fast-lane desk"
fast_lane = true
team = "desk"
"""


@pytest.fixture
def office(engine, standin, tmp_path) -> Workspace:
    standin.channels["#fast-lane"] = FAST_LANE_CHANNEL
    ws = Workspace(engine, standin, datetime(2026, 11, 6, 15, 0, tzinfo=NY))  # a Friday afternoon
    path = tmp_path / "teams.toml"
    path.write_text(TEAMS, encoding="utf-8")
    ws.settings.pql_teams_file = path
    ws.pipeline.router = Router(ws.settings.calendar, cap=5, manager=BOSS, teams=ws.settings.teams)
    with ws.pipeline.session() as session, session.begin():
        leads.sync_roster(session, ws.settings.roster, now=ws.now)
    return ws


def demo(ws: Workspace) -> int:
    ask = Trial("dana", email="dana@globex.com", signup=ws.now - timedelta(days=1))
    return ws.lead("dana", ask.add("demo_requested", ws.now - timedelta(minutes=1)))


def alert_text(ws: Workspace, pql_id: int, channel: str = CHANNEL) -> str:
    alert_ts = ws.pql(pql_id).alert_ts
    [posted] = [c for c in ws.standin.posted(channel) if not c.params.get("thread_ts")]
    assert alert_ts and f"PQL-{pql_id}" in posted.params["text"]
    blocks = posted.params["blocks"]
    return json.dumps(json.loads(blocks) if isinstance(blocks, str) else blocks, ensure_ascii=False)


def test_the_alert_goes_to_its_team_s_channel_and_says_which_row_chose_the_team_and_why_that_rep(office):
    pql_id = demo(office)
    assert (office.pql(pql_id).team, office.pql(pql_id).rep_id) == ("desk", FAY)
    assert office.standin.posted(CHANNEL) == []  # not in #pql-alerts: in the desk's own channel
    assert office.pql(pql_id).alert_channel == FAST_LANE_CHANNEL
    shown = alert_text(office, pql_id, FAST_LANE_CHANNEL)
    assert "_Routed: team Fast-lane desk (routing matrix row 1): demo / contact-sales request: the fast-lane " \
           "desk; fast lane (never capped): in business hours" in shown
    office.command(BOSS, Command.PQL, f"why PQL-{pql_id}")
    said = office.said()[-1]
    assert f"assigned to <@{FAY}> — team Fast-lane desk (routing matrix row 1)" in said


def test_pql_handoff_hands_a_lead_to_customer_success_and_pql_why_tells_the_story(office):
    pql_id = office.lead()  # sarah: not fast lane, so the default team
    owner = office.pql(pql_id).rep_id
    assert owner in {ANA, BEN} and office.pql(pql_id).team == "sdr"
    office.click(owner, Action.CLAIM, pql_id)
    other = BEN if owner == ANA else ANA
    office.command(other, Command.PQL, f"handoff PQL-{pql_id} cs")
    assert office.said()[-1] == (f"PQL-{pql_id} is <@{owner}>'s lead: only they or the sales manager can hand it "
                                 "to another team.")
    office.command(owner, Command.PQL, f"handoff PQL-{pql_id} cs stuck on SSO, needs onboarding help")
    assert office.said()[-1] == (f"<@{owner}> handed PQL-{pql_id} to Customer success (routed to CS). <@{GUS}> has "
                                 "it now; the first-touch clock starts again now.")
    assert (office.pql(pql_id).team, office.pql(pql_id).rep_id) == ("cs", GUS)
    office.command(BOSS, Command.PQL, f"why PQL-{pql_id}")
    assert (f"handed off to team cs (<@{GUS}>) (by <@{owner}>) — team Customer success: handed off from SDR pool: "
            "routed to CS") in office.said()[-1]
    with office.pipeline.session() as session:
        [dm] = session.exec(select(Notice).where(Notice.kind == "dm", Notice.target == GUS)).all()
    assert "Note: stuck on SSO, needs onboarding help" in dm.text and "*Opening:*" in dm.text


def test_app_home_shows_the_manager_each_team_and_the_fast_lane_first(office):
    sarah = office.lead()
    dana = demo(office)
    office.click(BEN, Action.PAUSE, value="pause", in_home=True)
    shown = json.dumps(home_for(office, BOSS), ensure_ascii=False)
    assert shown.index(f"PQL-{dana}") < shown.index(f"PQL-{sarah}")  # the fast lane first
    for expected in ("*SDR pool* · 0 waiting for a rep · 1 assigned, not claimed · cap 5 a day",
                     "*Fast-lane desk* · 0 waiting for a rep · 1 assigned, not claimed · cap 5 a day",
                     "*Customer success* · 0 waiting for a rep · 0 assigned, not claimed · cap 8 a day",
                     "Gus Lind", "0 of 8 new today"):
        assert expected in shown, expected
    rep_home = json.dumps(home_for(office, GUS), ensure_ascii=False)
    assert "0 of 8 new PQLs today" in rep_home  # a rep's own cap is their team's


def test_a_team_s_review_is_rendered_with_its_own_leads_and_named(office):
    demo(office)  # the desk's
    office.lead()  # the SDR pool's
    with office.pipeline.session() as session:
        text, blocks, chart = office.server.runtime.render_review(session, "2026-W45|desk")
    chart.unlink()
    shown = json.dumps(blocks, ensure_ascii=False)
    assert "Team: Fast-lane desk" in shown
    with office.pipeline.session() as session:
        _, everyone, chart = office.server.runtime.render_review(session, "2026-W45")
    chart.unlink()
    assert "Team:" not in json.dumps(everyone, ensure_ascii=False)


def test_a_rep_claims_only_their_own_team_s_leads_and_a_bare_claim_skips_the_others(office):
    office.click(FAY, Action.PAUSE, value="pause", in_home=True)
    pql_id = demo(office)  # the desk's, and its only member is paused: it waits, for nobody yet
    assert (office.pql(pql_id).team, office.pql(pql_id).state, office.pql(pql_id).rep_id) == ("desk", "queued", None)
    office.click(ANA, Action.CLAIM, pql_id)
    assert office.said()[-1] == (f"PQL-{pql_id} is for Fast-lane desk: only its members claim it (or the sales "
                                 "manager, for someone).")
    office.command(ANA, Command.CLAIM)
    answer = office.standin.responses[-1]["text"]  # the command's answer (the click's was an ephemeral)
    assert "PQL-" not in answer and office.pql(pql_id).claimed_by is None  # nothing of hers to take
    office.command(BOSS, Command.CLAIM, f"PQL-{pql_id} <@{ANA}|ana>")  # the manager may, for anyone
    assert office.pql(pql_id).claimed_by == ANA


def test_the_hand_off_button_opens_a_modal_of_the_teams_that_take_hand_offs_and_its_submission_hands_it_off(office):
    pql_id = office.lead()
    owner = office.pql(pql_id).rep_id
    office.click(owner, Action.CLAIM, pql_id)
    office.deliver()
    edited = office.standin.calls_to("chat.update")[-1].params["blocks"]
    edited = json.loads(edited) if isinstance(edited, str) else edited
    buttons = [e["action_id"] for b in edited if b["type"] == "actions" for e in b["elements"]]
    assert Action.HAND_OFF in buttons
    office.click(owner, Action.HAND_OFF, pql_id)
    [opened] = office.standin.calls_to("views.open")
    modal = opened.params["view"]
    modal = json.loads(modal) if isinstance(modal, str) else modal
    [team_select] = [b["element"] for b in modal["blocks"] if b.get("block_id") == "team"]
    assert [o["value"] for o in team_select["options"]] == ["cs"]  # the only team taking hand-offs
    empty = office.submit(owner, View.HAND_OFF, pql_id, {})
    assert empty.json()["errors"] == {"team": "Pick a team."}
    values = {"team": {"team": {"type": "static_select", "selected_option": {"value": "cs"}}},
              "handoff-note": {"handoff-note": {"type": "plain_text_input", "value": "needs SSO help"}}}
    other = BEN if owner == ANA else ANA
    refused = office.submit(other, View.HAND_OFF, pql_id, values)
    assert refused.json()["errors"]["team"].startswith(f"PQL-{pql_id} is <@{owner}>'s lead")
    assert office.submit(owner, View.HAND_OFF, pql_id, values).status_code == 200
    assert (office.pql(pql_id).team, office.pql(pql_id).rep_id) == ("cs", GUS)
