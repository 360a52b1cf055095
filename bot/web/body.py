"""Reading a request's body under a size limit, for every endpoint that takes one (ingestion, Slack's)."""

from __future__ import annotations

from starlette.requests import Request


class TooLarge(Exception):
    """The body is over `limit` bytes; each caller answers it in its own words (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body is over {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes, else TooLarge. Content-Length refuses an honest big body unread;
    counting while streaming catches a chunked or lying one. A client that hangs up midway raises Starlette's
    ClientDisconnect."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(limit)
    return bytes(body)
