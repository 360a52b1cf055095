"""The Web API gateway against the local Slack stand-in: real slack_sdk, real HTTP on 127.0.0.1."""

from __future__ import annotations

from http.client import HTTPException

import pytest
from freezegun import freeze_time
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler

from bot.settings import Settings
from bot.slack.gateway import Gateway, RateLimited, error_code, make_client
from tests.standin import ALERTS_CHANNEL_ID, SlackStandIn

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*PQL-1*"}}]


@pytest.fixture
def slack():
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def gateway(slack):
    return Gateway.connect("xoxb-test", slack.url, backoff=0.01)


def test_the_client_retries_server_errors_and_dropped_connections_but_never_sleeps_out_a_rate_limit():
    client = make_client("xoxb-test", "http://127.0.0.1:9/api", max_retries=5)
    assert client.base_url == "http://127.0.0.1:9/api/" and client.timeout > 0
    kinds = {type(h): h.max_retry_count for h in client.retry_handlers}
    assert kinds == {ServerErrorRetryHandler: 5, ConnectionErrorRetryHandler: 5}


def test_the_gateway_takes_its_token_and_url_from_settings(slack):
    settings = Settings(_env_file=None, slack_bot_token="xoxb-from-settings", slack_api_url=slack.url)
    assert Gateway.from_settings(settings).client.auth_test()["ok"]
    assert slack.calls[0].token == "xoxb-from-settings"
    assert slack.calls[0].headers["Authorization"] == "Bearer xoxb-from-settings"


def test_a_post_returns_the_channel_id_and_ts_slack_gave_it(slack, gateway):
    first = gateway.post("#pql-alerts", "PQL-1", BLOCKS)
    second = gateway.post(ALERTS_CHANNEL_ID, "in the thread", thread_ts=first[1])
    assert first[0] == second[0] == ALERTS_CHANNEL_ID and first[1] < second[1]
    alert, threaded = slack.history("#pql-alerts")
    assert (alert.text, alert.blocks, alert.thread_ts) == ("PQL-1", BLOCKS, None)
    assert threaded.thread_ts == first[1]


def test_an_update_edits_the_message_in_place(slack, gateway):
    channel, ts = gateway.post("#pql-alerts", "v1", BLOCKS)
    gateway.update(channel, ts, "v2", BLOCKS)
    [message] = slack.history(channel)
    assert (message.text, len(message.edits)) == ("v2", 1)


def test_an_ephemeral_message_is_for_one_user(slack, gateway):
    ts = gateway.ephemeral(ALERTS_CHANNEL_ID, "U0ANA", "Only you can see this")
    [call] = slack.calls_to("chat.postEphemeral")
    assert call.params["user"] == "U0ANA" and ts


def test_a_dm_opens_the_conversation_then_posts_in_it(slack, gateway):
    assert gateway.dm("U0ANA", "hello")[0] == "DU0ANA"
    assert [c.method for c in slack.calls] == ["conversations.open", "chat.postMessage"]
    assert slack.posted("DU0ANA")[0].params["text"] == "hello"


def test_views_open_and_publish_answer_with_the_view_slack_made(slack, gateway):
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Log a touch"}, "blocks": []}
    assert gateway.open_view("trigger-1", modal)["id"].startswith("V")
    assert gateway.publish_home("U0ANA", {"type": "home", "blocks": []})["type"] == "home"
    assert slack.calls_to("views.open")[0].params["trigger_id"] == "trigger-1"
    assert slack.calls_to("views.publish")[0].params["user_id"] == "U0ANA"


def test_a_rate_limit_holds_back_that_channel_until_retry_after_and_nothing_else(slack, gateway):
    with freeze_time("2026-11-04 16:00:00") as clock:
        slack.fail_next("chat.postMessage", status=429, retry_after=60)
        with pytest.raises(RateLimited) as limited:  # at once: the caller does not sleep out the minute
            gateway.post("#pql-alerts", "PQL-1")
        assert limited.value.retry_after == 60 and error_code(limited.value) == "ratelimited"
        clock.tick(59)
        with pytest.raises(RateLimited) as still:  # held back: Slack is not asked again before then
            gateway.post("#pql-alerts", "PQL-1")
        assert still.value.retry_after == pytest.approx(1)
        assert gateway.post("#other", "elsewhere")[0] == "COTHER"  # other channels, DMs, other calls go on
        assert gateway.dm("U0ANA", "hello")[0] == "DU0ANA"
        assert gateway.ephemeral(ALERTS_CHANNEL_ID, "U0ANA", "only you")
        clock.tick(1)
        assert gateway.post("#pql-alerts", "PQL-1")[0] == ALERTS_CHANNEL_ID
    assert [c.status for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "#pql-alerts"] == [429, 200]


def test_a_rate_limit_on_another_method_holds_back_that_method(slack, gateway):
    with freeze_time("2026-11-04 16:00:00") as clock:
        slack.fail_next("views.open", status=429, retry_after=20)
        modal = {"type": "modal", "title": {"type": "plain_text", "text": "Log a touch"}, "blocks": []}
        for _ in range(2):
            with pytest.raises(RateLimited):
                gateway.open_view("trigger-1", modal)
        assert gateway.post("#pql-alerts", "PQL-1")  # posts are another limit
        clock.tick(20)
        assert gateway.open_view("trigger-2", modal)["id"]
    assert [c.status for c in slack.calls_to("views.open")] == [429, 200]


def test_server_errors_past_the_retries_surface_as_slack_api_errors(slack, gateway):
    slack.fail_next("chat.postMessage", times=4, status=503)
    with pytest.raises(SlackApiError) as raised:
        gateway.post("#pql-alerts", "PQL-1")
    assert raised.value.response.status_code == 503 and len(slack.calls) == 4
    assert slack.history("#pql-alerts") == []


def test_dropped_connections_past_the_retries_surface_as_connection_errors(slack, gateway):
    slack.fail_next("*", times=4, drop=True)
    with pytest.raises((OSError, HTTPException)):
        gateway.post("#pql-alerts", "PQL-1")
    assert [c.status for c in slack.calls] == [0, 0, 0, 0]


def test_slacks_refusals_are_not_retried(slack, gateway):
    with pytest.raises(SlackApiError) as raised:
        gateway.client.api_call("chat.scheduleMessage")
    assert raised.value.response["error"] == "unknown_method" and len(slack.calls) == 1
    unauthenticated = Gateway.connect(None, slack.url)
    with pytest.raises(SlackApiError) as raised:
        unauthenticated.post("#pql-alerts", "PQL-1")
    assert raised.value.response["error"] == "not_authed"


def test_the_stand_in_reads_form_bodies_and_answers_user_lookups(slack, gateway):
    slack.users["U0ANA"] = "Ana Ruiz"
    assert gateway.client.users_info(user="U0ANA")["user"]["real_name"] == "Ana Ruiz"
    gateway.client.conversations_open(users="U0RAJ")
    assert slack.calls_to("conversations.open")[0].params == {"users": "U0RAJ"}
    method, params, headers = slack.calls[0]
    assert (method, params["user"]) == ("users.info", "U0ANA") and "Authorization" in headers


def test_the_stand_ins_fault_ratio_is_deterministic_for_a_seed():
    def statuses(seed):
        with SlackStandIn() as standin:
            standin.fail_ratio(0.5, seed=seed)
            client = Gateway.connect("xoxb-test", standin.url, max_retries=0)
            for _ in range(40):
                try:
                    client.client.chat_postMessage(channel="#pql-alerts", text="x")
                except (SlackApiError, OSError, HTTPException):
                    pass
            return [c.status for c in standin.calls]

    first = statuses(7)
    assert first == statuses(7) and {0, 429, 500, 200} <= set(first)
