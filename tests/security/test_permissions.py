"""Who may do what, for every button and modal that changes something: people off the roster (never on it,
or taken off while holding a lead) change nothing, and reps cannot use the manager's buttons. Each refusal
is said privately to whoever tried; no modal opens for them. App Home shows the queue and the team to the
manager only. Off the roster, every way to a lead answers as it would for a lead that does not exist."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from bot.services import leads
from bot.slack.ids import Action, Command, Input, View
from tests.security.support import lead_state
from tests.slack.conftest import ANA, BEN, BOSS, EVE

TOUCH = {Input.TOUCH_CHANNEL: {Input.TOUCH_CHANNEL: {"type": "static_select", "selected_option": {"value": "call"}}},
         Input.TOUCH_NOTE: {Input.TOUCH_NOTE: {"type": "plain_text_input", "value": "left a voicemail"}}}
DISPOSITION = {Input.DISPOSITION: {Input.DISPOSITION: {"type": "static_select",
                                                      "selected_option": {"value": "nurture"}}}}
PICK_ANA = {Input.REP: {Input.REP: {"type": "static_select", "selected_option": {"value": ANA}}}}
PICK_CS = {Input.TEAM: {Input.TEAM: {"type": "static_select", "selected_option": {"value": "cs"}}}}

OUTSIDER, FORMER_REP, REP = EVE, BEN, ANA


@dataclass(frozen=True)
class Team:
    held: int  # claimed by Ben, who has since been taken off the roster
    waiting: int  # nobody's yet


@pytest.fixture
def team(workspace) -> Team:
    held, waiting = workspace.lead("sarah"), workspace.lead("tina")
    workspace.click(BEN, Action.CLAIM, held)
    with workspace.pipeline.session() as session, session.begin():
        leads.sync_roster(session, [(ANA, "Ana Ruiz", None)], now=workspace.now)  # Ben leaves the team
    workspace.standin.calls.clear()
    return Team(held, waiting)


# Every id in bot/slack/ids.py, classified: what changes state, and which lead it is tried on.
BUTTONS = {  # action -> (the lead it is clicked on, value override, clicked in App Home)
    Action.CLAIM: ("waiting", None, False),
    Action.LOG_TOUCH: ("held", None, False),  # the button opens the modal: refused before it opens
    Action.SET_DISPOSITION: ("held", None, False),
    Action.PAUSE: (None, "pause", True),
    Action.REASSIGN: ("held", None, False),
    Action.CLAIM_FOR: ("waiting", None, False),
    Action.RELEASE: ("held", None, False),
    Action.SHARE_REVIEW: (None, "this", False),  # a post in the team's channel, in their name
    Action.HAND_OFF: ("held", None, False),  # the button opens the modal: refused before it opens
}
MANAGER_ONLY = {Action.REASSIGN, Action.CLAIM_FOR, Action.RELEASE, View.REASSIGN, View.CLAIM_FOR}
SUBMISSIONS = {  # view -> (the lead, the state submitted)
    View.LOG_TOUCH: ("held", TOUCH),
    View.SET_DISPOSITION: ("held", DISPOSITION),
    View.REASSIGN: ("held", PICK_ANA),
    View.CLAIM_FOR: ("waiting", PICK_ANA),
    View.HAND_OFF: ("held", PICK_CS),
}
READ_ONLY = {Action.DETAILS, View.DETAILS}  # the lead's details: for the roster only (see the last tests)


def test_every_action_and_view_id_is_classified_here():
    assert set(BUTTONS) | (READ_ONLY & set(Action)) == set(Action)
    assert set(SUBMISSIONS) | (READ_ONLY & set(View)) == set(View)


def refusals(workspace, user: str) -> list[str]:
    """What `user` was told privately: ephemerals to them, and DMs (conversations.open with them, then a post)."""
    calls = workspace.standin.calls
    told = [c.params.get("text", "") for c in calls if c.method == "chat.postEphemeral" and c.params["user"] == user]
    dm_opened = any(c.method == "conversations.open" and c.params.get("users") == user for c in calls)
    told += [c.params.get("text", "") for c in calls if dm_opened and c.method == "chat.postMessage"
             and c.params.get("channel") == f"D{user}"]
    return told + [r.get("text", "") for r in workspace.standin.responses]


def lead_of(team: Team, which: str | None) -> int | None:
    return getattr(team, which) if which else None


def forbidden(action: Action | View) -> tuple[str, ...]:
    """Who is tried on each: everyone off the roster, and reps too on the manager's buttons."""
    return (OUTSIDER, FORMER_REP, REP) if action in MANAGER_ONLY else (OUTSIDER, FORMER_REP)


def forget_calls(workspace) -> None:
    workspace.standin.calls.clear()
    workspace.standin.responses.clear()


@pytest.mark.parametrize("action", list(BUTTONS))
def test_a_button_that_changes_state_refuses_whoever_may_not_use_it_privately(workspace, team, action):
    which, value, in_home = BUTTONS[action]
    for user in forbidden(action):
        forget_calls(workspace)
        before = lead_state(workspace.pipeline.engine)
        response = workspace.click(user, action, lead_of(team, which), value=value, in_home=in_home)
        assert response.status_code == 200
        assert lead_state(workspace.pipeline.engine) == before, f"{user} changed something"
        assert workspace.standin.calls_to("views.open") == [], f"a modal opened for {user}"
        assert not workspace.standin.posted("#pql-alerts"), f"{user} had something posted in the channel"
        told = refusals(workspace, user)
        assert told and all(text.strip() for text in told), f"{user} was not told why"
        assert any(w in " ".join(told) for w in ("roster", "manager", "<@U0BEN>")), told


@pytest.mark.parametrize("view", list(SUBMISSIONS))
def test_a_forged_modal_submission_is_refused_in_the_modal_and_changes_nothing(workspace, team, view):
    """A modal they could never have opened, submitted anyway (Slack signs whatever its client sends)."""
    which, values = SUBMISSIONS[view]
    for user in forbidden(view):
        before = lead_state(workspace.pipeline.engine)
        response = workspace.submit(user, view, lead_of(team, which), values)
        assert response.status_code == 200
        answer = response.json()
        assert answer["response_action"] == "errors", f"{user}: {answer}"
        assert all(text.strip() for text in answer["errors"].values())
        assert lead_state(workspace.pipeline.engine) == before, f"{user} changed something"


COMMANDS = {
    "outsider claims": (OUTSIDER, Command.CLAIM, "PQL-{waiting}"),
    "outsider takes the oldest": (OUTSIDER, Command.CLAIM, ""),
    "former rep claims": (FORMER_REP, Command.CLAIM, "PQL-{waiting}"),
    "rep claims for another": (REP, Command.CLAIM, f"PQL-{{waiting}} <@{ANA}>"),
    "outsider claims for a rep": (OUTSIDER, Command.CLAIM, f"PQL-{{waiting}} <@{ANA}>"),
    "rep reassigns": (REP, Command.PQL, f"reassign PQL-{{held}} <@{ANA}>"),
    "outsider reassigns": (OUTSIDER, Command.PQL, f"reassign PQL-{{held}} <@{ANA}>"),
    "outsider pauses": (OUTSIDER, Command.PQL, "pause"),
    "former rep resumes": (FORMER_REP, Command.PQL, "resume"),
    "outsider hands off": (OUTSIDER, Command.PQL, "handoff PQL-{held} cs"),
    "former rep hands off": (FORMER_REP, Command.PQL, "handoff PQL-{held} cs"),
}


def test_the_slash_command_ways_to_the_same_changes_are_refused_too(workspace, team):
    for case, (user, command, text) in COMMANDS.items():
        forget_calls(workspace)
        before = lead_state(workspace.pipeline.engine)
        assert workspace.command(user, command, text.format(held=team.held, waiting=team.waiting)).status_code == 200
        assert lead_state(workspace.pipeline.engine) == before, case
        [answer] = workspace.standin.responses
        assert answer["response_type"] == "ephemeral" and answer["text"].strip(), case


def test_a_rep_taken_off_the_roster_keeps_no_rights_over_the_lead_they_hold(workspace, team):
    """Before: `_may_work` only asked whether they held the claim, so a leaver kept logging touches and
    closing leads (and the modal opened for them)."""
    workspace.click(FORMER_REP, Action.LOG_TOUCH, team.held)
    assert workspace.standin.calls_to("views.open") == []
    assert "roster" in refusals(workspace, FORMER_REP)[0]
    response = workspace.submit(FORMER_REP, View.SET_DISPOSITION, team.held, DISPOSITION)
    assert "roster" in json.dumps(response.json()["errors"])
    assert workspace.pql(team.held).state == "claimed"


# App Home ------------------------------------------------------------------------------------------------------

def home_of(workspace, user: str) -> str:
    workspace.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"})
    published = workspace.standin.calls_to("views.publish")[-1]
    assert published.params["user_id"] == user
    view = published.params["view"]
    return json.dumps(json.loads(view) if isinstance(view, str) else view)


def test_app_home_shows_no_queue_and_no_team_to_anyone_but_the_manager(workspace, team):
    for user in (REP, FORMER_REP, OUTSIDER):
        home = home_of(workspace, user)
        for manager_only in ("Queue (", "*Reps*", "waiting for a rep", "Ana Ruiz", "taking leads"):
            assert manager_only not in home, f"{user} sees {manager_only!r}"
        assert f"PQL-{team.waiting}" not in home  # the queue's lead (Ana's home lists only her own leads)
        if user != REP:
            assert f"PQL-{team.held}" not in home and "Pause my assignments" not in home


def test_app_home_shows_the_manager_the_queue_and_the_team(workspace, team):
    home = home_of(workspace, BOSS)
    assert "Queue (" in home and "*Reps*" in home and "Ana Ruiz" in home


# Off the roster, nothing about leads -----------------------------------------------------------------------------

NO_SUCH_LEAD = (999_999, "nobody@nowhere.example")  # (id, email) of a lead that does not exist
#: Every way in that names a lead, given the lead's id and email.
WAYS_TO_A_LEAD = {
    "/pql why PQL-n": lambda ws, user, pql_id, email: ws.command(user, Command.PQL, f"why PQL-{pql_id}"),
    "/pql why <email>": lambda ws, user, pql_id, email: ws.command(user, Command.PQL, f"why {email}"),
    "/claim PQL-n": lambda ws, user, pql_id, email: ws.command(user, Command.CLAIM, f"PQL-{pql_id}"),
    "/claim <email>": lambda ws, user, pql_id, email: ws.command(user, Command.CLAIM, email),
    "/pql reassign PQL-n @rep": lambda ws, user, pql_id, email: ws.command(
        user, Command.PQL, f"reassign PQL-{pql_id} <@{ANA}>"),
    "Details": lambda ws, user, pql_id, email: ws.click(user, Action.DETAILS, pql_id),
    "Claim": lambda ws, user, pql_id, email: ws.click(user, Action.CLAIM, pql_id),
    "Log touch": lambda ws, user, pql_id, email: ws.click(user, Action.LOG_TOUCH, pql_id),
    "Release": lambda ws, user, pql_id, email: ws.click(user, Action.RELEASE, pql_id),
    "a Log touch submission": lambda ws, user, pql_id, email: ws.submit(user, View.LOG_TOUCH, pql_id, TOUCH),
    "a Reassign submission": lambda ws, user, pql_id, email: ws.submit(user, View.REASSIGN, pql_id, PICK_ANA),
}
#: What would tell them something about a lead: its tier or points, a rep (by mention or name), the queue.
TELLING = ("high", "medium", "low", "point", "<@", "Ana", "Ben", "queue", "Queue", "sarah", "Sarah", "Acme")


def answer(workspace, user: str, way: str, pql_id: int, email: str) -> tuple:
    """Everything `user` was told by trying `way` on the lead (said privately, or in the modal they submitted),
    and how many modals opened."""
    forget_calls(workspace)
    response = WAYS_TO_A_LEAD[way](workspace, user, pql_id, email)
    assert response.status_code == 200
    in_the_modal = list(response.json()["errors"].values()) if response.content else []
    return tuple(refusals(workspace, user) + in_the_modal), len(workspace.standin.calls_to("views.open"))


@pytest.mark.parametrize("way", list(WAYS_TO_A_LEAD))
def test_off_the_roster_every_way_to_a_lead_answers_as_if_it_did_not_exist(workspace, team, way):
    """Before: `/pql why PQL-1` showed them the lead's tier, points and assignment trail, `/claim <email>` said
    "No lead matches" only for a lead that did not exist, and Details opened the lead's card."""
    not_on_roster = "Only reps on the PQL roster can do that. Ask your sales manager to add you."
    for user in (OUTSIDER, FORMER_REP):
        for pql_id, email in ((team.held, "sarah@acme.com"), (team.waiting, "tina@acme.com")):
            before = lead_state(workspace.pipeline.engine)
            told = answer(workspace, user, way, pql_id, email)
            assert told == answer(workspace, user, way, *NO_SUCH_LEAD), f"{user}, {way}: the lead's existence shows"
            assert told == ((not_on_roster,), 0), f"{user}, {way}"
            assert not any(word in text for text in told[0] for word in TELLING), told
            assert lead_state(workspace.pipeline.engine) == before
