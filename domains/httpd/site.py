"""The built-in site: the files RedLeaf's httpd compiles in, re-created by size.

RedLeaf's redhttpd serves an index.html of 636 bytes, style.css, 404.html and 1K, 10K
and 100K binaries (the paper's wrk runs fetch the index). Their contents are not
reproduced; these are our own, of the same sizes: an HTML page padded to exactly 636
bytes, a small stylesheet, a 404 page, and pseudo-random binaries from a fixed seed
(the same bytes on every run, so clients can compare them byte for byte).

Interface: `builtin_files()` returns a tuple of (path, bytes) pairs; `content_type(path)`.
Benchmarks and tests import this module to write the same files for nginx and
Python's http.server, and to check curl's bodies. Pure functions.
"""

import random

INDEX_SIZE = 636


def _index() -> bytes:
    head = (b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            b"<title>RedLeaf Lab httpd</title><link rel=\"stylesheet\" href=\"/style.css\">"
            b"</head>\n<body><h1>RedLeaf Lab</h1>\n<p>Served by the httpd domain over the lab's "
            b"own TCP/IP stack (the netstack domain), the ixgbe driver domain and the 82599 "
            b"model. Files: <a href=\"/1K.bin\">1K</a> <a href=\"/10K.bin\">10K</a> "
            b"<a href=\"/100K.bin\">100K</a>.</p>\n<!-- ")
    tail = b" -->\n</body></html>\n"
    return head + b"." * (INDEX_SIZE - len(head) - len(tail)) + tail


def _blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def builtin_files() -> tuple:
    return (
        ("/index.html", _index()),
        ("/style.css", b"body { font-family: sans-serif; margin: 2em; }\nh1 { color: #a00; }\n"),
        ("/404.html", b"<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n"),
        ("/1K.bin", _blob(1024, 1)),
        ("/10K.bin", _blob(10 * 1024, 10)),
        ("/100K.bin", _blob(100 * 1024, 100)),
    )


def content_type(path: str) -> str:
    if path.endswith(".html"):
        return "text/html"
    if path.endswith(".css"):
        return "text/css"
    if path.endswith(".txt"):
        return "text/plain"
    return "application/octet-stream"
