"""Reading a request's body under a size limit, for every endpoint that takes one (ingestion, Slack's), and
unpacking a gzip body under the same limit (ingestion: Segment's and RudderStack's libraries gzip theirs)."""

from __future__ import annotations

import zlib

from starlette.requests import Request

#: Output per decompression step: a gzip bomb is refused after at most this much past the limit, never unpacked.
_STEP = 64 * 1024
_GZIP = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not a bare zlib stream


class TooLarge(Exception):
    """The body is over `limit` bytes; each caller answers it in its own words (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body is over {limit} bytes")
        self.limit = limit


class Unreadable(Exception):
    """A body that cannot be read as sent: answered `{"error": reason}` with `status` (400, or 415 for an
    encoding pqlbot does not speak)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


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


def unpack(body: bytes, encoding: str, limit: int) -> bytes:
    """The body as its `Content-Encoding` header says it was packed: none (or identity) as it is, gzip unpacked
    to at most `limit` bytes (else TooLarge), anything else Unreadable with 415."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise Unreadable(f"Content-Encoding {encoding[:40]!r} is not supported: send gzip or none", 415)
    return gunzip(body, limit)


def gunzip(packed: bytes, limit: int) -> bytes:
    """A gzip body unpacked in steps of at most `_STEP` bytes, so one that would unpack past `limit` is refused
    (TooLarge) having held no more than `limit + _STEP`. Members one after another (what `cat a.gz b.gz` makes)
    are one body, as gzip reads them; zero bytes after the last are padding. Anything else is Unreadable."""
    out = bytearray()
    rest = packed
    while True:
        unpacker = zlib.decompressobj(_GZIP)
        try:
            while not unpacker.eof:
                chunk = unpacker.decompress(rest, _STEP)
                out += chunk
                if len(out) > limit:
                    raise TooLarge(limit)
                rest = unpacker.unconsumed_tail
                if not chunk and not rest:  # nothing left to read, and the member never ended
                    raise Unreadable("body is not valid gzip: it ends before its last member does")
        except zlib.error:
            raise Unreadable("body is not valid gzip (Content-Encoding: gzip)") from None
        rest = unpacker.unused_data
        if not rest.strip(b"\0"):
            return bytes(out)
