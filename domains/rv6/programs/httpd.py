"""httpd [-p PORT] [-w WORKERS] [-t SECONDS] [ROOT]: an HTTP/1.1 server for static files
of the Rv6 file system (default ROOT /www, PORT 80), over Rv6's socket system calls.

The same behaviour as the httpd domain (domains/httpd/http.py, RFC 9112): GET and HEAD
with Content-Length and keep-alive (HTTP/1.1 unless "Connection: close", HTTP/1.0 only
with "Connection: keep-alive"), pipelined requests, "/" is /index.html, an unknown path
is 404 with ROOT/404.html, another method 501; a malformed request (bad request line,
header field, missing Host, a Transfer-Encoding, a head over 8 KiB) gets 400 and the
connection is closed, and the server goes on. Each response reads its file from the
file system (open, fstat, read): nothing is cached. A path with a ".." segment is 404;
a file that exists but cannot be read (an fs error) is 500.

Descriptors: a process has NOFILE (16) of them, so one process serves at most 12
connections at once (stdin is closed; stdout, stderr, the listener and one for the file
being read stay). With
-w N the server spawns N-1 workers (`httpd -L ROOT`), each given the listening socket as
its fd 0, as a pre-forking server does; a process at its limit stops accepting and
leaves new connections queued for the others. -t SECONDS ends the server (and its
workers end with their own -t) after that long; otherwise it serves until killed. If
the network stack restarts (the listener reports an error), it exits with status 1, for
whoever started it to start it again.
"""

from redleaf_lab.api import Block, RRef
from redleaf_lab.interfaces.rv6 import NOFILE, O_RDONLY, T_FILE
from redleaf_lab.interfaces.socket import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, STREAM

EAGAIN = 11
MAX_HEAD = 8192
MAX_BODY = 65536
CHUNK = 4096
TOKEN = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VISIBLE = bytes(range(33, 127))  # a request target: no controls, space or DEL
FIELD = bytes([9, *range(32, 127), *range(128, 256)])  # HTAB, SP, VCHAR, obs-text
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
           501: "Not Implemented"}
MISSING = (2, 20, 21)  # ENOENT, ENOTDIR, EISDIR: 404; any other error: 500
CONNECTIONS = NOFILE - 4  # per process
TYPES = {"html": "text/html", "css": "text/css", "txt": "text/plain"}
BAD = ("", "", "", False)


class Parser:
    """Bytes in, requests (method, target, version, keep_alive) or BAD out."""

    def __init__(self):
        self.buffer = bytearray()
        self.skip = 0
        self.failed = False

    def next(self):
        if self.failed:
            return None
        buffer = self.buffer
        if self.skip:
            cut = min(self.skip, len(buffer))
            del buffer[:cut]
            self.skip -= cut
            if self.skip:
                return None
        while buffer[:2] == b"\r\n" or buffer[:1] == b"\n":
            del buffer[:2 if buffer[:1] == b"\r" else 1]
        end = buffer.find(b"\n\r\n")
        size = end + 3
        bare = buffer.find(b"\n\n")
        if bare >= 0 and (end < 0 or bare < end):
            end, size = bare, bare + 2
        if end < 0:
            return self.fail() if len(buffer) > MAX_HEAD else None
        if size > MAX_HEAD:
            return self.fail()
        head = bytes(buffer[:end])
        del buffer[:size]
        request = self.parse(head)
        return self.fail() if request is BAD else request

    def fail(self):
        self.failed = True
        return BAD

    def parse(self, head):
        lines = [line[:-1] if line.endswith(b"\r") else line for line in head.split(b"\n")]
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            return BAD
        method, target, version = parts
        if not method or method.translate(None, TOKEN):  # leftover bytes: not allowed
            return BAD
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            return BAD
        if not target.startswith(b"/") or target.translate(None, VISIBLE):
            return BAD
        hosts, connection, length = 0, b"", 0
        for line in lines[1:]:
            colon = line.find(b":")
            if colon <= 0 or line[colon - 1] in (32, 9) or line[0] in (32, 9):
                return BAD
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
        keep = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
        return (method.decode(), target.decode(), version.decode(), keep)


def head(status, length, kind, keep):
    close = "" if keep else "Connection: close\r\n"
    return (f"HTTP/1.1 {status} {REASONS[status]}\r\nServer: rv6-httpd\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {length}\r\n{close}\r\n").encode()


class Server:
    def __init__(self, u, root):
        self.u = u
        self.sys = u.sys
        self.root = root.rstrip("/")
        self.rx = RRef.new(Block)
        self.tx = RRef.new(Block)
        self.conns = {}  # fd -> [parser, pending output, closing]
        self.served = 0
        self.bad = 0

    # -- files ----------------------------------------------------------------------------
    def read_file(self, path):
        """The bytes of ROOT/path; None if missing (or not a file, or a ".." in the
        path); an int (-errno) if the file system failed."""
        if ".." in path.split("/"):
            return None
        fd = self.u.open(self.root + path, O_RDONLY)
        if fd < 0:
            return None if -fd in MISSING else fd
        st = self.u.fstat(fd)
        data = self.u.read_all(fd) if st[0] == 0 and st[3] == T_FILE else None
        self.u.close(fd)
        return data

    def respond(self, request):
        method, target, _version, keep = request
        if method not in ("GET", "HEAD"):
            body = b"<h1>501 Not Implemented</h1>\n"
            return head(501, len(body), "text/html", keep) + body
        path = target.split("?", 1)[0]
        if path == "/":
            path = "/index.html"
        body = self.read_file(path)
        if type(body) is int:
            status, kind, body = 500, "text/html", b"<h1>500 Internal Server Error</h1>\n"
        elif body is None:
            status, kind = 404, "text/html"
            body = self.read_file("/404.html")
            if type(body) is not bytes:
                body = b"<h1>404 Not Found</h1>\n"
        else:
            status = 200
            kind = TYPES.get(path.rsplit(".", 1)[-1], "application/octet-stream")
        out = head(status, len(body), kind, keep)
        return out if method == "HEAD" else out + body

    # -- connections ----------------------------------------------------------------------
    def accept(self, lfd):
        while len(self.conns) < CONNECTIONS:
            fd, _ip, _port = self.sys.accept(lfd)
            if fd < 0:
                return
            self.conns[fd] = [Parser(), b"", False]

    def serve(self, fd, ready):
        conn = self.conns[fd]
        if ready & POLLIN:
            n, self.rx = self.sys.recv(fd, self.rx, CHUNK)
            if n > 0:
                if not conn[2]:
                    conn[0].buffer += self.rx.tobytes()[:n]
                    self.answer(conn)
            elif n != -EAGAIN:
                return self.close(fd)
        elif ready & (POLLERR | POLLHUP | POLLNVAL):
            return self.close(fd)
        if conn[1]:
            self.write(fd, conn)
        if conn[2] and not conn[1]:
            self.close(fd)
        return None

    def answer(self, conn):
        parts = [conn[1]]
        while True:
            request = conn[0].next()
            if request is None:
                break
            if request is BAD:
                self.bad += 1
                body = b"<h1>400 Bad Request</h1>\n"
                parts.append(head(400, len(body), "text/html", False) + body)
                conn[2] = True
                break
            parts.append(self.respond(request))
            self.served += 1
            if not request[3]:
                conn[2] = True
                break
        conn[1] = b"".join(parts)

    def write(self, fd, conn):
        out = conn[1]
        done = 0
        while done < len(out):
            chunk = out[done:done + CHUNK]
            self.tx.write(chunk)
            n, self.tx = self.sys.send(fd, self.tx, len(chunk))
            if n <= 0:
                if n != -EAGAIN:
                    done = len(out)
                    conn[2] = True
                break
            done += n
        conn[1] = out[done:]

    def close(self, fd):
        self.conns.pop(fd, None)
        self.u.close(fd)

    def run(self, lfd, seconds):
        deadline = None if seconds is None else self.u.uptime() + int(seconds * 1e9)
        while deadline is None or self.u.uptime() < deadline:
            fds, events = [], []
            if len(self.conns) < CONNECTIONS:
                fds.append(lfd)
                events.append(POLLIN)
            for fd, conn in self.conns.items():
                fds.append(fd)
                events.append(POLLIN | POLLOUT if conn[1] else POLLIN)
            revents = self.sys.poll(tuple(fds), tuple(events), 50)
            for fd, ready in zip(fds, revents, strict=False):
                if not ready:
                    continue
                if fd == lfd:
                    if ready & (POLLNVAL | POLLERR | POLLHUP):
                        return self.stop(1)  # the stack restarted: our sockets are gone
                    self.accept(lfd)
                elif fd in self.conns:
                    self.serve(fd, ready)
        return self.stop(0)

    def stop(self, status):
        for fd in list(self.conns):
            self.close(fd)
        return status


def main(u, argv):
    port, workers, seconds, root, listener = 80, 1, None, "/www", -1
    args = list(argv[1:])
    try:
        while args and args[0].startswith("-"):
            flag = args.pop(0)
            if flag == "-p":
                port = int(args.pop(0))
            elif flag == "-w":
                workers = max(1, min(8, int(args.pop(0))))
            elif flag == "-t":
                seconds = float(args.pop(0))
            elif flag == "-L":
                listener = 0
            else:
                raise ValueError(flag)
    except (ValueError, IndexError):
        u.puts(2, "usage: httpd [-p PORT] [-w WORKERS] [-t SECONDS] [ROOT]\n")
        return 2
    if args:
        root = args[0]
    if listener < 0:
        listener = u.sys.socket(STREAM)
        err = listener
        if listener >= 0:
            err = u.sys.bind(listener, port) or u.sys.listen(listener, 128)
        if err < 0:
            u.puts(2, f"httpd: cannot listen on port {port}: {u.strerror(err)}\n")
            return 1
        u.close(0)  # stdin: one more descriptor for connections
        for _ in range(workers - 1):
            wargv = ["httpd", "-L"] + (["-t", str(seconds)] if seconds is not None else [])
            pid = u.spawn("/httpd", tuple([*wargv, root]), (listener, 1, 2))
            if pid < 0:
                u.puts(2, f"httpd: cannot start a worker: {u.strerror(pid)}\n")
        u.puts(1, f"httpd: serving {root} on port {port} with {workers} process(es)\n")
    status = Server(u, root).run(listener, seconds)
    u.close(listener)
    return status
