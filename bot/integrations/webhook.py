"""The generic webhook (PQL_WEBHOOK_URL): each tracking-plan event POSTed as a Segment track call, signed.

The signature: `X-Pqlbot-Timestamp` is the Unix time (seconds) of this attempt, and
`X-Pqlbot-Signature: sha256=<hex>` is HMAC-SHA256, keyed with PQL_WEBHOOK_SECRET, of `<timestamp>.<body>`: the
timestamp header's digits, a full stop, then the raw body bytes. Signing the timestamp with the body lets a receiver
refuse an old request replayed (check it is within 5 minutes) as well as a forged one. The body is the same on every
attempt; the timestamp is not. Each body's `messageId` is stable, so a receiver that saw it already drops it.
"""

from __future__ import annotations

import hashlib
import hmac

import urllib3

from bot.integrations.errors import TryLater, by_status

TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Pqlbot-Signature` header's value for this body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver checks (tests use it as one): the signature matches, compared in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")


class Webhook:
    """POSTs bodies to one URL; one connection pool, no retries of its own (the outbox retries)."""

    def __init__(self, url: str, secret: str, *, pool: urllib3.PoolManager | None = None) -> None:
        self.url, self._secret = url, secret
        self._pool = pool or urllib3.PoolManager(timeout=TIMEOUT, retries=False)

    def send(self, body: str, *, timestamp: int) -> None:
        """Raises TryLater or WontHeal (bot/integrations/errors.py) unless the receiver answered 2xx."""
        data = body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "pqlbot-webhook/1",
                   "X-Pqlbot-Timestamp": str(timestamp), "X-Pqlbot-Signature": signature(self._secret, timestamp, data)}
        try:
            answer = self._pool.request("POST", self.url, body=data, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError as error:
            raise TryLater(f"webhook_{type(error).__name__}") from None
        if not 200 <= answer.status < 300:
            raise by_status(answer.status, answer.headers, what="webhook")
