"""HTTP/1.1 requests and responses (RFC 9112 message syntax, RFC 9110 semantics), sans-I/O.

Why our own parser and not h11: the server needs GET and HEAD, a byte limit and a
handful of headers; h11 is a general state machine with a per-event cost we would pay
on every request, and a domain may import only the allow-listed standard library.

Interface: `Parser.feed(data)` appends received bytes; `Parser.next()` returns the
next complete `Request` (method, target, version, keep_alive), a `BAD` request (the
caller answers 400 and closes), or None (need more bytes). `Site.respond(request)`
returns (response bytes, keep the connection open). Rules:
* a request head (request line and fields, 3.-5.) ends with an empty line; one longer
  than MAX_HEAD bytes is bad (RFC 9112 3: a server may answer 400 to over-long lines);
* the request line is exactly `method SP target SP HTTP/1.x` (3.); bare LF line ends
  are accepted (2.2), other control bytes are not;
* HTTP/1.1 needs one Host field (3.2); a field line needs a name and a colon with no
  space before it (5.1); a body is not expected: a Content-Length above MAX_BODY or a
  Transfer-Encoding is bad, a small Content-Length body is skipped (6.3);
* keep-alive: HTTP/1.1 persists unless `Connection: close`, HTTP/1.0 closes unless
  `Connection: keep-alive` (9.3);
* GET and HEAD of a known path: 200 with Content-Length (HEAD: no body); "/" is
  "/index.html"; an unknown path: 404 with the 404 page; another method: 501.
Each connection owns one Parser; a Site is shared and read-only after creation.
"""

MAX_HEAD = 8192
MAX_BODY = 65536


class Request:
    def __init__(self, method: str, target: str, version: str, keep_alive: bool) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.keep_alive = keep_alive


BAD = Request("", "", "", False)
TOKEN_BYTES = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# byte classes as `bytes` for translate(None, allowed): what is left over is not allowed
# (one C call per check instead of a Python loop over the bytes)
TOKEN = bytes(sorted(TOKEN_BYTES))
VISIBLE = bytes(range(33, 127))  # a request target: no controls, space or DEL
FIELD = bytes([9, *range(32, 127), *range(128, 256)])  # a field line: HTAB, SP, VCHAR, obs-text


class Parser:
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.skip = 0  # body bytes of the previous request still to discard
        self.failed = False

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def next(self):
        if self.failed:
            return None
        if self.skip:
            cut = min(self.skip, len(self.buffer))
            del self.buffer[:cut]
            self.skip -= cut
            if self.skip:
                return None
        buffer = self.buffer
        while buffer[:2] == b"\r\n" or buffer[:1] == b"\n":  # RFC 9112 2.2: leading empty lines
            del buffer[:2 if buffer[:1] == b"\r" else 1]
        end = buffer.find(b"\n\r\n")
        size = end + 3
        bare = buffer.find(b"\n\n")
        if bare >= 0 and (end < 0 or bare < end):
            end, size = bare, bare + 2
        if end < 0:
            if len(buffer) > MAX_HEAD:
                return self.fail()
            return None
        if size > MAX_HEAD:
            return self.fail()
        head = bytes(buffer[:end])
        del buffer[:size]
        request = self.parse_head(head)
        if request is BAD:
            return self.fail()
        return request

    def fail(self):
        self.failed = True
        return BAD

    def parse_head(self, head: bytes):
        lines = head.split(b"\n")
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            return BAD
        method, target, version = parts
        if not method or method.translate(None, TOKEN):
            return BAD
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            return BAD
        if not target.startswith(b"/") or target.translate(None, VISIBLE):
            return BAD
        hosts = 0
        connection = b""
        length = 0
        for line in lines[1:]:
            colon = line.find(b":")
            if colon <= 0 or line[colon - 1] in (32, 9) or line[0] in (32, 9):
                return BAD  # no name, space before the colon, or obsolete line folding
            if line.translate(None, FIELD):
                return BAD
            name = line[:colon].lower()
            value = line[colon + 1:].strip(b" \t")
            if name == b"host":
                hosts += 1
            elif name == b"connection":
                connection = value.lower()
            elif name == b"content-length":
                if not value.isdigit() or int(value) > MAX_BODY:
                    return BAD
                length = int(value)
            elif name == b"transfer-encoding":
                return BAD
        if version == b"HTTP/1.1" and hosts != 1:
            return BAD
        self.skip = length
        if version == b"HTTP/1.1":
            keep_alive = b"close" not in connection
        else:
            keep_alive = b"keep-alive" in connection
        return Request(method.decode(), target.decode(), version.decode(), keep_alive)


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}


class Site:
    """Responses for a fixed set of files, headers prebuilt per (path, keep-alive)."""

    def __init__(self, files, content_type) -> None:
        self.files = {}
        for path, body in files:
            self.files[str(path)] = bytes(body)
        self.types = {path: content_type(path) for path in self.files}
        self.not_found = self.files.get("/404.html", b"<h1>404 Not Found</h1>\n")
        self.heads = {}

    def head(self, status: int, length: int, kind: str, keep_alive: bool) -> bytes:
        key = (status, length, kind, keep_alive)
        cached = self.heads.get(key)
        if cached is None:
            close = "" if keep_alive else "Connection: close\r\n"
            cached = (f"HTTP/1.1 {status} {REASONS[status]}\r\nServer: redleaf-lab-httpd\r\n"
                      f"Content-Type: {kind}\r\nContent-Length: {length}\r\n{close}\r\n").encode()
            if len(self.heads) < 1024:
                self.heads[key] = cached
        return cached

    def bad_request(self) -> bytes:
        body = b"<h1>400 Bad Request</h1>\n"
        return self.head(400, len(body), "text/html", False) + body

    def respond(self, request):
        keep = request.keep_alive
        if request.method not in ("GET", "HEAD"):
            body = b"<h1>501 Not Implemented</h1>\n"
            return self.head(501, len(body), "text/html", keep) + body, keep
        path = request.target.split("?", 1)[0]
        if path == "/":
            path = "/index.html"
        body = self.files.get(path)
        if body is None:
            status, body, kind = 404, self.not_found, "text/html"
        else:
            status, kind = 200, self.types[path]
        head = self.head(status, len(body), kind, keep)
        if request.method == "HEAD":
            return head, keep
        return head + body, keep
