"""A webhook receiver as a team would write one: it checks each call's signature (bot/integrations/webhook.py's
`verify`, the README's recipe) and counts each event once by its messageId. Real HTTP on 127.0.0.1.

    with Receiver(SECRET) as receiver:
        ... PQL_WEBHOOK_URL=receiver.url ...
        assert receiver.events("pql_claimed") == [...]

`answer(status, times, retry_after=...)` answers the next calls with an error (`times=None`: until `heal()`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bot.integrations.webhook import verify


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.calls: list[dict] = []  # every request: headers, body, whether it verified, what we answered
        self.seen: dict[str, dict] = {}  # messageId -> the event, first time only
        self.deliveries: Counter[str] = Counter()  # messageId -> how many times it arrived, verified
        self._faults: list[tuple[int, int | None, float | None]] = []
        self.before_answer = lambda body: None  # a test may hold an answer here (the call is counted already)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = receiver._take(dict(self.headers), body)
                receiver.before_answer(body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pql"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, status: int, times: int | None = 1, *, retry_after: float | None = None) -> None:
        with self._lock:
            self._faults.append((status, times, retry_after))

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take(self, headers: dict, body: bytes) -> tuple[int, dict]:
        with self._lock:
            good = verify(self.secret, headers.get("X-Pqlbot-Timestamp", ""), body,
                          headers.get("X-Pqlbot-Signature", ""))
            call = {"headers": headers, "body": body, "verified": good}
            self.calls.append(call)
            if self._faults:
                status, times, retry_after = self._faults[0]
                if times is not None:
                    self._faults[0] = (status, times - 1, retry_after)
                    if times - 1 <= 0:
                        self._faults.pop(0)
                call["status"] = status
                return status, ({"Retry-After": str(retry_after)} if retry_after is not None else {})
            if not good:
                call["status"] = 401
                return 401, {}
            event = json.loads(body)
            self.deliveries[event["messageId"]] += 1
            self.seen.setdefault(event["messageId"], event)
            call["status"] = 200
            return 200, {}

    def events(self, name: str | None = None) -> list[dict]:
        """Each event once, in the order first received."""
        with self._lock:
            return [e for e in self.seen.values() if name is None or e["event"] == name]
