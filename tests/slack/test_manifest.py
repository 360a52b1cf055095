"""manifest.yml matches the code: the commands, events and interactivity it registers, the scopes its
Web API calls need, and Slack's published manifest schema."""

import json
import re
from pathlib import Path

import pytest
import yaml

from bot.slack.listeners import actions, commands, home, manager

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
#: Slack's published manifest schema (slackapi/manifest-schema, MIT: LICENSE.manifest-schema beside it), vendored so
#: that the test runs in a fresh clone.
SCHEMA = Path(__file__).parent / "schema" / "manifest.schema.1.0.0.json"
#: The bot scope each Web API method pqlbot calls needs (views.* and auth.test need none).
SCOPES = {"chat_postMessage": "chat:write", "chat_update": "chat:write", "chat_postEphemeral": "chat:write",
          "conversations_open": "im:write", "views_open": None, "views_publish": None,
          # files_upload_v2 calls files.getUploadURLExternal and files.completeUploadExternal itself.
          "files_upload_v2": "files:write", "files_getUploadURLExternal": "files:write",
          "files_completeUploadExternal": "files:write",
          # Reading back the alerts channel (public or private) or a thread before re-posting into it.
          "conversations_history": ("channels:history", "groups:history"),
          "conversations_replies": ("channels:history", "groups:history"),
          # `pqlbot doctor`: the token, each rep and the manager, and Socket Mode's app-level token.
          "auth_test": None, "users_info": "users:read", "apps_connections_open": None}


class Recorder:
    """Stands in for Bolt's App: records what each surface registers."""

    def __init__(self):
        self.registered = {"command": set(), "action": set(), "view": set(), "event": set()}

    def __getattr__(self, kind):
        def register(key):
            self.registered[kind].add(str(key))
            return lambda listener: listener
        return register


@pytest.fixture(scope="module")
def registered():
    recorder = Recorder()
    for surface in (commands, actions, home, manager):
        surface.register(recorder)
    return recorder.registered


def test_every_registered_command_is_in_the_manifest_and_the_other_way_round(registered):
    listed = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert registered["command"] == listed == {"/claim", "/pql", "/pql-review"}


def test_every_registered_event_is_subscribed_and_the_other_way_round(registered):
    assert registered["event"] == set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])


def test_buttons_and_modals_need_interactivity_which_is_on(registered):
    assert registered["action"] and registered["view"]
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True


def test_the_scopes_are_exactly_what_the_web_api_calls_need():
    source = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    called = set(re.findall(r"client\.(\w+)\(", source))
    assert called <= set(SCOPES), f"add the scope for {called - set(SCOPES)} to SCOPES and the manifest"
    needed = {"commands"}
    for method in called:  # a method may need one of several scopes (public or private channel): all listed
        scopes = SCOPES[method]
        needed |= set(scopes) if isinstance(scopes, tuple) else {scopes} - {None}
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_slack_reaches_the_app_where_it_listens():
    urls = {c["url"] for c in MANIFEST["features"]["slash_commands"]}
    urls |= {MANIFEST["settings"]["interactivity"]["request_url"],
             MANIFEST["settings"]["event_subscriptions"]["request_url"]}
    assert {url.rsplit("/", 2)[-2:] == ["slack", "events"] for url in urls} == {True}


def test_the_manifest_follows_slacks_published_schema():
    import jsonschema

    jsonschema.validate(MANIFEST, json.loads(SCHEMA.read_text()))
