"""Reading a body as it was packed: gzip unpacked in bounded steps under the size limit, anything else refused."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from bot.web.body import TooLarge, Unreadable, gunzip, unpack

LIMIT = 1024 * 1024
TEXT = b'{"batch": [{"type": "track", "event": "session_start"}]}'


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", " x-gzip "])
def test_a_gzip_body_is_unpacked_whatever_the_header_s_case(encoding):
    assert unpack(gzip.compress(TEXT), encoding, LIMIT) == TEXT


@pytest.mark.parametrize("encoding", ["", "identity"])
def test_a_body_sent_as_it_is_is_read_as_it_is(encoding):
    assert unpack(TEXT, encoding, LIMIT) == TEXT


def test_members_one_after_another_are_one_body_and_zero_padding_is_ignored():
    assert gunzip(gzip.compress(TEXT[:10]) + gzip.compress(TEXT[10:]) + b"\0" * 8, LIMIT) == TEXT


def test_a_body_that_unpacks_to_exactly_the_limit_is_read_and_one_byte_more_is_too_large():
    assert len(gunzip(gzip.compress(b" " * LIMIT), LIMIT)) == LIMIT
    with pytest.raises(TooLarge):
        gunzip(gzip.compress(b" " * (LIMIT + 1)), LIMIT)


def test_a_gzip_bomb_is_refused_without_being_unpacked_into_memory():
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), 1)  # 64 MiB of zeros in about 300 KB
    assert len(bomb) < LIMIT
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            gunzip(bomb, LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT  # the limit and a step or two, not 64 MiB


@pytest.mark.parametrize("packed", [
    TEXT,  # not gzip at all
    b"",
    zlib.compress(TEXT),  # a zlib stream is not a gzip one
    gzip.compress(TEXT)[:-6],  # cut short
    gzip.compress(TEXT) + b"trailing junk",
], ids=["plain-json", "empty", "zlib", "truncated", "trailing-junk"])
def test_a_body_that_claims_gzip_and_is_not_is_unreadable_with_400(packed):
    with pytest.raises(Unreadable) as refused:
        unpack(packed, "gzip", LIMIT)
    assert refused.value.status == 400 and "gzip" in refused.value.reason


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, br"])
def test_any_other_encoding_is_unreadable_with_415(encoding):
    with pytest.raises(Unreadable) as refused:
        unpack(TEXT, encoding, LIMIT)
    assert refused.value.status == 415 and "not supported" in refused.value.reason
