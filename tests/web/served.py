"""A real `pqlbot serve` for the tests that talk to ingestion the way senders do: over HTTP on loopback, to a
process of its own (tests/reliability's `Serve`), on each store backend. One process per test module (starting
one takes a second or two): tests/web/conftest.py's `served` fixture, or a module's own around `serving`.

    def test_something(served):
        status, answer = served.post("/v1/batch", body, gzipped=True)
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import http.client
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bot.store import make_engine
from tests.conftest import own_database
from tests.reliability.conftest import INGEST_TOKEN, Serve
from tests.standin import SlackStandIn

SHARED_SECRET = "segment-webhook-shared-secret"
_databases = itertools.count()
TOKEN = INGEST_TOKEN


@dataclass
class Served:
    serve: Serve
    engine: sa.Engine

    @property
    def port(self) -> int:
        return self.serve.port

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, path: str, body: bytes | dict, *, gzipped: bool = False, token: bool = True,
             headers: dict | None = None) -> tuple[int, dict]:
        """POST `body` (bytes as they are, a dict as JSON), with the token unless told not to; the status and the
        JSON answer."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {TOKEN}"
        if gzipped:
            data, sent["Content-Encoding"] = gzip.compress(data), "gzip"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", path, body=data, headers=sent)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def stored(self, message_ids: Iterable[str]) -> dict[str, int]:
        """How many rows of `events` each of these messageIds has (absent: none)."""
        ids = sorted(set(message_ids))
        if not ids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT message_id, count(*) FROM events WHERE message_id IN :ids "
                                              "GROUP BY message_id").bindparams(sa.bindparam("ids", expanding=True)),
                                      {"ids": ids})
            return dict(rows.all())

    def rows(self, query: str, **params) -> list:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.text(query), params))

    def all_message_ids(self) -> set[str]:
        return {row.message_id for row in self.rows("SELECT message_id FROM events")}

    def answered(self, status: int, path: str = "/v1/batch") -> int:
        """How many requests to `path` the process has answered with `status` so far (from its log)."""
        return self.serve.log().count(f"{path} -> {status} ")


def signature(body: bytes, secret: str = SHARED_SECRET) -> str:
    """What Segment's Webhook destination sends as X-Signature."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@contextmanager
def serving(backend: str, folder: Path) -> Iterator[Served]:
    """`pqlbot serve` on a free port with INGEST_TOKEN and SEGMENT_SHARED_SECRET set, on an empty store (a SQLite
    file in `folder`, or a PostgreSQL database of its own); killed on the way out."""
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{folder}/pqlbot.db"
        else:
            url = stack.enter_context(own_database(f"pqlbot_web_{os.getpid()}_{next(_databases)}"))
        slack = stack.enter_context(SlackStandIn())
        serve = Serve("serve", database_url=url, slack=slack, zone="Etc/UTC", folder=folder)
        serve.env["SEGMENT_SHARED_SECRET"] = SHARED_SECRET
        stack.callback(serve.kill)
        serve.start().ready()
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield Served(serve, engine)
