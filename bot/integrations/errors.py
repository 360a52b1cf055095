"""How an integration's call failed, as the sender (delivery.py) needs to know it."""

from __future__ import annotations


class TryLater(Exception):
    """It may work later: a 5xx, a dropped connection, a timeout, or a rate limit (`limited`, not an attempt: the
    service did nothing). `retry_after` is the service's Retry-After in seconds, when it gave one."""

    def __init__(self, code: str, retry_after: float | None = None, *, limited: bool = False) -> None:
        super().__init__(code)
        self.code, self.retry_after, self.limited = code, retry_after, limited


class WontHeal(Exception):
    """Retrying will not help until someone changes something: 401/403 (the token or its scopes), 404/410 (the
    receiver is gone), a property the CRM does not have (`pqlbot crm setup`), a request it refuses."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def retry_after(headers) -> float | None:  # noqa: ANN001 (any mapping of headers)
    """A Retry-After header in seconds (the delay form; an HTTP date is not sent by the services we call)."""
    value = None
    for name, text in (headers or {}).items():
        if name.lower() == "retry-after":
            value = text
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def by_status(status: int, headers=None, *, what: str = "http") -> Exception:  # noqa: ANN001
    """The failure a status means: 429 limited, 5xx try later, 401/403/404/410 and other 4xx won't heal."""
    if status == 429:
        return TryLater(f"{what}_429", retry_after(headers), limited=True)
    if status >= 500 or status in (408, 425):
        return TryLater(f"{what}_{status}", retry_after(headers))
    return WontHeal(f"{what}_{status}")
