"""The review in Slack, end to end through the workspace harness: /pql-review answers privately, its Share
button posts to the PQL channel, and the Friday notice goes out as blocks plus an uploaded PNG."""

from __future__ import annotations

import glob
import os
import tempfile
from datetime import datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block
from sqlmodel import select

from bot import store
from bot.services.routing import Router
from bot.slack.delivery import deliver_due
from bot.slack.ids import Action
from bot.store.models import Notice
from bot.sweeps.runner import Sweeps, default_steps
from bot.sweeps.weekly_review import weekly_review
from tests.services.test_metrics import NY, the_week
from tests.slack.conftest import BOSS, CHANNEL
from tests.standin import ALERTS_CHANNEL_ID

PNG = b"\x89PNG\r\n\x1a\n"
MONDAY_NOON = datetime(2026, 11, 9, 12, 0, tzinfo=NY)  # W46 has just begun; W45 is "last"


@pytest.fixture
def review_workspace(workspace):
    with store.session(workspace.pipeline.engine) as session, session.begin():
        the_week(session)
    workspace.now = MONDAY_NOON
    return workspace


def valid(blocks: list[dict]) -> list[dict]:
    """Blocks as Slack would take them: slack_sdk parses each and writes it back unchanged."""
    assert blocks and len(blocks) <= 50
    assert [Block.parse(b).to_dict() for b in blocks] == blocks
    return blocks


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path, monkeypatch):
    """Temporary charts go to this test's own folder, so other suites running beside it cannot change the count."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


def review_pngs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "pql-review-*.png")))


@pytest.mark.parametrize("asked, title, figure", [
    ("2026-W45", "2026-W45 (02 Nov - 08 Nov)", "Acceptance (Meeting Set + Converted)*: 50%"),
    ("last", "2026-W45 (02 Nov - 08 Nov)", "SLA compliance (first touch in time)*: 40%"),
    ("this", "2026-W46 (09 Nov - 15 Nov)", "Acceptance (Meeting Set + Converted)*: no data"),
])
def test_pql_review_answers_privately_with_the_weeks_review_and_a_share_button(review_workspace, asked, title,
                                                                              figure):
    ws = review_workspace
    assert ws.command(BOSS, "/pql-review", asked).status_code == 200
    [answer] = ws.standin.responses
    assert answer["response_type"] == "ephemeral"
    blocks = valid(answer["blocks"])
    assert blocks[0]["text"]["text"] == f"📊 PQL weekly review · {title}"
    assert figure in "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    [button] = blocks[-1]["elements"]
    assert button["action_id"] == Action.SHARE_REVIEW and button["value"] == title.split()[0]
    assert answer["text"].startswith(f"PQL review {title}:")
    assert ws.standin.posted() == []  # nothing in the channel until someone shares it


def test_pql_review_with_a_bad_week_says_what_it_accepts_privately(review_workspace):
    ws = review_workspace
    ws.command(BOSS, "/pql-review", "next <!channel>")
    [answer] = ws.standin.responses
    assert answer["response_type"] == "ephemeral" and "blocks" not in answer
    assert answer["text"] == ('I don\'t know the week "next &lt;!channel&gt;". Try `/pql-review this`, '
                              '`/pql-review last` or a week like `/pql-review 2026-W45`.')


def test_the_share_button_posts_the_review_and_its_chart_to_the_channel_and_says_so_privately(review_workspace):
    ws = review_workspace
    before = review_pngs()
    ws.click(BOSS, Action.SHARE_REVIEW, value="2026-W45")
    [post] = ws.standin.posted("#pql-alerts")
    blocks = valid(post.params["blocks"])
    assert blocks[0]["text"]["text"] == "📊 PQL weekly review · 2026-W45 (02 Nov - 08 Nov)"
    assert "actions" not in [b["type"] for b in blocks]  # the shared copy has no Share button
    assert blocks[-1]["elements"][0]["text"] == f"Shared by <@{BOSS}>"
    [png] = ws.standin.files.values()
    assert png["channel"] == ALERTS_CHANNEL_ID and png["content"].startswith(PNG)
    assert png["title"] == "PQL weekly review · 2026-W45"
    assert ws.said() == [f"Posted the 2026-W45 review to <#{ALERTS_CHANNEL_ID}> for everyone."]
    assert review_pngs() == before  # the temporary chart is gone


def sweeps_for(ws) -> Sweeps:
    router = Router(ws.settings.calendar, cap=ws.settings.pql_daily_cap, manager=ws.settings.pql_manager)
    return Sweeps(ws.pipeline, router, ws.settings, steps=default_steps("weekly_review", "review_triggers"))


def deliver(ws, *, render_review=True):
    return deliver_due(ws.pipeline.engine, ws.gateway, render_alert=ws.server.runtime.render_alert,
                       alerts_channel=ws.settings.pql_alerts_channel, now=ws.now,
                       render_review=ws.server.runtime.render_review if render_review else None)


def the_notice(ws) -> Notice:
    with store.session(ws.pipeline.engine) as session:
        return session.exec(select(Notice).where(Notice.kind == "review")).one()


def test_the_friday_review_is_posted_as_blocks_then_the_chart_is_uploaded_as_a_png(review_workspace):
    ws = review_workspace
    ws.now = datetime(2026, 11, 6, 10, 0, tzinfo=NY)
    assert sweeps_for(ws).run_due(ws.now) == {"weekly_review": 1, "review_triggers": 0}
    before = review_pngs()
    assert deliver(ws, render_review=False).waiting == 1  # a deliverer without a renderer leaves it be
    assert ws.standin.calls == []
    report = deliver(ws)
    assert report.sent == 1
    [post] = ws.standin.posted("#pql-alerts")
    blocks = valid(post.params["blocks"])
    assert blocks[0]["text"]["text"] == "📊 PQL weekly review · 2026-W45 (02 Nov - 08 Nov)"
    assert "as of Fri 6 Nov 10:00" in blocks[1]["elements"][0]["text"]
    assert "actions" not in [b["type"] for b in blocks]
    methods = [c.method for c in ws.standin.calls]
    assert methods == ["chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal"]
    [png] = ws.standin.files.values()
    assert png["content"].startswith(PNG) and png["length"] == len(png["content"]) > 10_000
    assert png["channel"] == ALERTS_CHANNEL_ID
    assert png["initial_comment"].startswith("Daily PQLs by tier against team capacity")
    notice = the_notice(ws)
    assert (notice.state, notice.channel, notice.ts) == ("sent", ALERTS_CHANNEL_ID, post.response["ts"])
    assert review_pngs() == before
    assert deliver(ws).sent == 0 and len(ws.standin.posted()) == 1  # once


def test_a_failed_upload_is_retried_without_posting_the_review_twice(review_workspace):
    ws = review_workspace
    ws.now = datetime(2026, 11, 6, 10, 0, tzinfo=NY)
    weekly_review(sweeps_for(ws), ws.now)
    ws.standin.fail_next("files.completeUploadExternal", times=4, status=500)  # outlasts the client's retries
    assert deliver(ws).failed == 1
    notice = the_notice(ws)
    assert (notice.state, notice.attempts, notice.last_error) == ("pending", 1, "internal_error")
    assert notice.ts is not None  # the post is remembered
    ws.now += timedelta(minutes=1)
    assert deliver(ws).sent == 1
    assert len(ws.standin.posted(CHANNEL)) == 1  # one review in the channel
    shared = [f for f in ws.standin.files.values() if f.get("channel")]  # the failed upload was never completed
    assert len(shared) == 1 and shared[0]["channel"] == CHANNEL and shared[0]["content"].startswith(PNG)
    assert the_notice(ws).state == "sent"
