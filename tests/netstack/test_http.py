"""The httpd's HTTP/1.1 parser and responses (RFC 9112): GET, HEAD, keep-alive,
pipelining, 404, 400 for malformed and oversized requests, 501 for other methods."""

from __future__ import annotations

import pytest
from redleaf_lab.domains.httpd.http import BAD, MAX_HEAD, Parser, Site
from redleaf_lab.domains.httpd.site import builtin_files, content_type

SITE = Site(builtin_files(), content_type)
FILES = dict(builtin_files())


def answer(raw: bytes):
    parser = Parser()
    parser.feed(raw)
    out = []
    while True:
        request = parser.next()
        if request is None:
            return out
        if request is BAD:
            out.append((SITE.bad_request(), False))
            return out
        out.append(SITE.respond(request))


def split(response: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], fields, body


def test_builtin_site_has_redleaf_s_sizes():
    assert len(FILES["/index.html"]) == 636
    assert [len(FILES[p]) for p in ("/1K.bin", "/10K.bin", "/100K.bin")] == [1024, 10240, 102400]


@pytest.mark.parametrize("path", sorted(FILES))
def test_get_every_file_with_content_length_and_keep_alive(path):
    ((response, keep),) = answer(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    status, fields, body = split(response)
    assert status == "HTTP/1.1 200 OK" and keep and "Connection" not in fields
    assert int(fields["Content-Length"]) == len(FILES[path]) and body == FILES[path]


def test_head_root_404_and_query():
    ((head, _),) = answer(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    status, fields, body = split(head)
    assert status.endswith("200 OK") and fields["Content-Length"] == "636" and body == b""
    ((missing, keep),) = answer(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
    assert split(missing)[0] == "HTTP/1.1 404 Not Found" and keep
    ((query, _),) = answer(b"GET /1K.bin?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert split(query)[2] == FILES["/1K.bin"]
    ((post, _),) = answer(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    assert split(post)[0] == "HTTP/1.1 501 Not Implemented"


def test_connection_close_http_1_0_and_pipelining():
    ((response, keep),) = answer(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert not keep and split(response)[1]["Connection"] == "close"
    assert answer(b"GET / HTTP/1.0\r\n\r\n")[0][1] is False
    assert answer(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0][1] is True
    three = answer(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
    assert len(three) == 3 and all(keep for _, keep in three)
    bare = answer(b"GET /style.css HTTP/1.1\nHost: a\n\n")  # bare LF (RFC 9112 2.2)
    assert split(bare[0][0])[2] == FILES["/style.css"]


def test_requests_arriving_in_pieces():
    parser = Parser()
    raw = b"GET /10K.bin HTTP/1.1\r\nHost: a\r\n\r\n"
    for i in range(len(raw) - 1):
        parser.feed(raw[i:i + 1])
        assert parser.next() is None
    parser.feed(raw[-1:])
    assert parser.next().target == "/10K.bin"


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET noslash HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",
    b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G\xffT / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
])
def test_malformed_requests_get_400_and_close(raw):
    out = answer(raw)
    assert len(out) == 1 and out[0][1] is False
    assert split(out[0][0])[0] == "HTTP/1.1 400 Bad Request"


def test_oversized_request_head_gets_400_even_before_it_ends():
    parser = Parser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + b"a" * MAX_HEAD)
    assert parser.next() is BAD
    assert parser.next() is None  # a failed parser stays failed: the server closes
