"""A team's manager in Slack: for their own team's leads the manager's buttons (Reassign, Claim for, Release),
`/claim PQL-n @rep`, Details and `/pql why` work as for the sales manager, choosing among the team's members; for
any other lead they are told what anyone off the roster is told, whether it exists or not. Both stores."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from bot.services import leads
from bot.services.routing import Router
from bot.slack.ids import Action, Command, Input, View
from tests.scoring.builders import NY, Trial
from tests.slack.conftest import ANA, BEN, BOSS, Workspace
from tests.slack.test_app import home_for

FAY, GUS, DESK_BOSS = "U0FAY", "U0GUS", "U0DESKBOSS"
TEAMS = f"""
default = "sdr"

[teams.sdr]
label = "SDR pool"
escalate_to = "{BOSS}"
members = [{{ id = "{ANA}", name = "Ana Ruiz" }}, {{ id = "{BEN}", name = "Ben Okafor" }}]

[teams.desk]
label = "Fast-lane desk"
escalate_to = "{DESK_BOSS}"
members = [{{ id = "{FAY}", name = "Fay Quinn" }}, {{ id = "{GUS}", name = "Gus Lind" }}]

[[routes]]
fast_lane = true
team = "desk"
"""
OFF_ROSTER = "Only reps on the PQL roster can do that. Ask your sales manager to add you."


@pytest.fixture
def office(engine, standin, tmp_path) -> Workspace:
    ws = Workspace(engine, standin, datetime(2026, 11, 6, 15, 0, tzinfo=NY))  # a Friday afternoon
    path = tmp_path / "teams.toml"
    path.write_text(TEAMS, encoding="utf-8")
    ws.settings.pql_teams_file = path
    ws.pipeline.router = Router(ws.settings.calendar, cap=5, manager=BOSS, teams=ws.settings.teams)
    with ws.pipeline.session() as session, session.begin():
        leads.sync_roster(session, ws.settings.teams.members(), now=ws.now)
    return ws


def demo(ws: Workspace, user: str = "dana") -> int:
    ask = Trial(user, email=f"{user}@globex.com", signup=ws.now - timedelta(days=1))
    return ws.lead(user, ask.add("demo_requested", ws.now - timedelta(minutes=1)))


def opened(ws: Workspace) -> list[dict]:
    return [json.loads(c.params["view"]) if isinstance(c.params["view"], str) else c.params["view"]
            for c in ws.standin.calls_to("views.open")]


def pick(ws: Workspace, user: str, callback: View, pql_id: int, rep: str):
    chosen = {"type": "static_select", "selected_option": {"value": rep}}
    return ws.submit(user, callback, pql_id, {Input.REP: {Input.REP: chosen}})


def choices(view: dict) -> list[str]:
    [select_] = [b["element"] for b in view["blocks"] if b.get("block_id") == Input.REP]
    return [o["value"] for o in select_["options"]]


def test_the_desk_s_manager_reassigns_its_lead_among_its_members_from_the_button(office):
    pql_id = demo(office)
    holder = office.pql(pql_id).rep_id
    other = GUS if holder == FAY else FAY
    office.click(DESK_BOSS, Action.REASSIGN, pql_id)
    [view] = opened(office)
    assert choices(view) == [other]  # the desk's other member: not the SDRs
    assert pick(office, DESK_BOSS, View.REASSIGN, pql_id, ANA).json()["errors"][Input.REP].startswith(
        f"<@{ANA}> isn't on Fast-lane desk")
    response = pick(office, DESK_BOSS, View.REASSIGN, pql_id, other)
    assert response.status_code == 200 and not response.content
    assert office.pql(pql_id).rep_id == other


def test_the_desk_s_manager_claims_for_a_member_and_releases_a_lead(office):
    pql_id = demo(office)
    office.command(DESK_BOSS, Command.CLAIM, f"PQL-{pql_id} <@{GUS}|gus>")
    assert office.said()[-1] == f"PQL-{pql_id} claimed by <@{GUS}> (by <@{DESK_BOSS}> on their behalf)."
    assert office.pql(pql_id).claimed_by == GUS
    office.click(DESK_BOSS, Action.RELEASE, pql_id)
    assert (office.pql(pql_id).claimed_by, office.pql(pql_id).rep_id) == (None, None)
    office.click(DESK_BOSS, Action.CLAIM_FOR, pql_id)
    [view] = opened(office)
    assert choices(view) == [FAY, GUS]


def test_the_desk_s_manager_sees_its_lead_s_details_and_story(office):
    pql_id = demo(office)
    office.click(DESK_BOSS, Action.DETAILS, pql_id)
    [view] = opened(office)
    assert f"PQL-{pql_id}" in json.dumps(view)
    office.command(DESK_BOSS, Command.PQL, f"why PQL-{pql_id}")
    assert office.said()[-1].startswith(f"*PQL-{pql_id}*") and "team Fast-lane desk" in office.said()[-1]


def test_for_another_team_s_lead_or_none_the_desk_s_manager_learns_nothing(office):
    sdr_lead = office.lead()  # sarah: not fast lane, the SDR pool's
    holder = office.pql(sdr_lead).rep_id
    told = []
    for user_text in (f"why PQL-{sdr_lead}", "why PQL-999", "why sarah@acme.com"):
        office.command(DESK_BOSS, Command.PQL, user_text)
        told.append(office.said()[-1])
    office.command(DESK_BOSS, Command.PQL, f"reassign PQL-{sdr_lead} <@{FAY}|fay>")
    told.append(office.said()[-1])
    office.command(DESK_BOSS, Command.CLAIM, f"PQL-{sdr_lead} <@{FAY}|fay>")
    told.append(office.said()[-1])
    office.command(DESK_BOSS, Command.CLAIM)
    told.append(office.said()[-1])
    for action in (Action.DETAILS, Action.REASSIGN, Action.CLAIM_FOR, Action.RELEASE):
        office.click(DESK_BOSS, action, sdr_lead)
        office.click(DESK_BOSS, action, 999)
    ephemerals = [c.params["text"] for c in office.standin.calls_to("chat.postEphemeral")]
    assert set(told) == {OFF_ROSTER} and set(ephemerals) == {OFF_ROSTER}
    assert opened(office) == []
    assert (office.pql(sdr_lead).rep_id, office.pql(sdr_lead).claimed_by) == (holder, None)


def test_the_sales_manager_keeps_every_right_over_every_team_s_lead(office):
    pql_id = demo(office)
    office.command(BOSS, Command.PQL, f"reassign PQL-{pql_id} <@{ANA}|ana>")
    assert office.pql(pql_id).rep_id == ANA


def test_the_desk_s_manager_s_app_home_shows_the_desk_s_queue_and_members_only(office):
    sdr_lead, desk_lead = office.lead(), demo(office)
    shown = json.dumps(home_for(office, DESK_BOSS), ensure_ascii=False)
    assert "*Fast-lane desk* · 0 waiting for a rep · 1 assigned, not claimed" in shown
    assert f"PQL-{desk_lead}" in shown and "Fay Quinn" in shown and "Gus Lind" in shown
    assert f"PQL-{sdr_lead}" not in shown and "SDR pool" not in shown and "Ana Ruiz" not in shown
    everything = json.dumps(home_for(office, BOSS), ensure_ascii=False)
    assert "*SDR pool*" in everything and "*Fast-lane desk*" in everything and f"PQL-{sdr_lead}" in everything


def test_a_manager_who_is_also_a_rep_sees_their_own_leads_not_a_team_s_queue_under_their_own(office, tmp_path):
    path = tmp_path / "playing.toml"
    path.write_text(TEAMS.replace(f'{{ id = "{BEN}", name = "Ben Okafor" }}', f'{{ id = "{BOSS}", name = "Bo Ss" }}'),
                    encoding="utf-8")
    office.settings.pql_teams_file = path
    office.pipeline.router = Router(office.settings.calendar, cap=5, manager=BOSS, teams=office.settings.teams)
    with office.pipeline.session() as session, session.begin():
        leads.sync_roster(session, office.settings.teams.members(), now=office.now)
    sarah = office.lead()
    office.command(BOSS, Command.PQL, f"reassign PQL-{sarah} <@{BOSS}|boss>")
    desk_lead = demo(office)
    view = home_for(office, BOSS)
    texts = [json.dumps(b, ensure_ascii=False) for b in view["blocks"]]
    mine = texts.index(next(t for t in texts if "Your open leads (1)" in t))
    queue = texts.index(next(t for t in texts if "*Queue (2)*" in t))
    assert f"PQL-{sarah}" in " ".join(texts[mine:queue]) and f"PQL-{desk_lead}" not in " ".join(texts[mine:queue])
