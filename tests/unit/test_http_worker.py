"""When serve's worker judges a request whole (bot/http_worker.py `request_extent`): from its headers alone, so a
thread is only given requests it can read from memory; what cannot be buffered is refused with its status."""

from __future__ import annotations

import pytest

from bot.http_worker import MAX_HEADER_BYTES, Complete, Incomplete, Refused, refusal, request_extent

HEAD = b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (HEAD, Incomplete()),  # headers not ended yet
        (HEAD + b"Content-Length: 5\r\n\r\nab", Incomplete()),
        (HEAD + b"Content-Length: 5\r\n\r\nabcde", Complete()),
        (HEAD + b"content-length:   5  \r\n\r\nabcdeGET / HTTP/1.1\r\n", Complete()),  # pipelined bytes after it
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", Complete()),  # no body
        (HEAD + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", Incomplete(expects_continue=True)),
        (HEAD + b"Content-Length: 2000000\r\n\r\n", Refused(413)),
        (HEAD + b"Content-Length: 99999999999999999999\r\n\r\n", Refused(413)),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", Refused(411)),
        (HEAD + b"X: " + b"a" * MAX_HEADER_BYTES, Refused(431)),
        # gunicorn's parser answers these 400 from the headers alone: handed on, never waited for
        (HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", Complete()),
        (HEAD + b"Content-Length: -5\r\n\r\n", Complete()),
        (HEAD + b"Content-Length: \xd9\xa5\r\n\r\n", Complete()),  # a non-ASCII digit
    ],
)
def test_request_extent(raw: bytes, expected: object) -> None:
    assert request_extent(raw, max_body=1_000_000) == expected


def test_a_refusal_closes_the_connection_and_carries_no_body() -> None:
    assert refusal(408) == b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def test_the_end_of_the_headers_is_found_across_reads_when_searching_from_where_the_last_search_stopped() -> None:
    first = HEAD + b"Content-Length: 0\r\n\r"  # the end's first three bytes arrived in this read
    assert request_extent(first) == Incomplete()
    assert request_extent(first + b"\n", search_from=len(first) - 3) == Complete()
