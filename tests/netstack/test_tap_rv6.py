"""The Rv6 httpd program through the TAP wire: Linux's own clients in a namespace the test
creates (and deletes) talk to `httpd -w 2 /www`, a program loaded from Rv6's file
system that serves the site from /www there, over Rv6's socket system calls, the
netstack domain and the ixgbe driver behind its shadow: curl for every file (bytes
compared), a malformed request (400 and the connection closed), wrk with zero errors,
and a crash of the program: its open connections are reset or closed (never a hang),
and the restarted program serves new ones. Also `redleaf-lab net up --rv6`.
Needs root, /dev/net/tun, ip, ping, curl and wrk (CI installs them)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from redleaf_lab.domains.httpd.site import builtin_files

from redleaf_lab.bench.tapstack import TapStack, missing_requirements

from .test_tap import KEEPALIVE_CLIENT

TOOLS = ("ip", "ping", "curl", "wrk")

RAW_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(sys.stdin.buffer.read())
got = b""
while True:
    data = s.recv(65536)
    if not data:
        break
    got += data
sys.stdout.buffer.write(got)
"""


@pytest.fixture
def rv6tap():
    why = missing_requirements(TOOLS)
    if why:
        pytest.skip(why)
    import redleaf_lab

    kernel = redleaf_lab.boot(heap_bytes=256 << 20, max_objects=1 << 16)
    try:
        with TapStack(kernel=kernel, address="10.83.0.2", peer="10.83.0.1",
                      rv6_workers=2) as stack:
            yield stack
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert stack.namespace not in names  # cleaned up
    finally:
        kernel.shutdown()


def program_domains(kernel) -> list[str]:
    return [name for name, d in kernel.domains.items()
            if name.startswith("rv6_p") and name.endswith("_httpd") and d.state == "running"]


@pytest.mark.netns
def test_curl_wrk_and_a_malformed_request(rv6tap):
    stack = rv6tap
    for path, body in builtin_files():
        got = stack.run_in_ns("curl", "-s", "--max-time", "10", stack.url(path))
        assert got.stdout == body, path
    code = stack.run_in_ns("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           stack.url("/none"))
    assert code.stdout == b"404"
    head = stack.run_in_ns("curl", "-s", "-I", stack.url("/10K.bin"))
    assert b"Content-Length: 10240" in head.stdout
    raw = stack.run_in_ns("python3", "-c", RAW_CLIENT, stack.address,
                          input=b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\n")
    assert raw.stdout.startswith(b"HTTP/1.1 400") and raw.stdout.count(b"HTTP/1.1") == 1
    done = stack.run_in_ns("wrk", "-t", "2", "-c", "20", "-d", "3", stack.url("/"), timeout=40)
    out = done.stdout.decode()
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 100 and "Socket errors" not in out and "Non-2xx" not in out, out
    assert not stack.errors and stack.rv6_runs == []  # httpd never ended


@pytest.mark.netns
def test_a_crash_of_the_program_resets_its_connections_and_it_serves_again(rv6tap):
    stack = rv6tap
    kernel = stack.kernel
    client = stack.popen_in_ns_stdin("python3", "-c", KEEPALIVE_CLIENT, stack.address)
    try:
        assert client.stdout.readline().startswith(b"first 7")  # head + 636-byte body
        for name in program_domains(kernel):  # the server and its worker
            kernel.panic(name)
        client.stdin.write(b"go\n")
        client.stdin.flush()
        assert client.stdout.readline().strip() in (b"reset", b"eof")  # never "hang"
    finally:
        client.kill()
        client.wait()
    deadline = time.monotonic() + 10
    while not stack.rv6_runs and time.monotonic() < deadline:
        time.sleep(0.05)
    status, output = stack.rv6_runs[0]
    assert status == -1 and "crashed" in output
    # until the crashed worker has ended, its listener (shared with the server) holds the
    # port: a connection queued there is reset when it closes, and the restarted httpd
    # cannot bind yet (it ends, and is started again): retry on any error
    got = stack.run_in_ns("curl", "-s", "--retry", "20", "--retry-all-errors", "--retry-delay",
                          "0", "--max-time", "10", stack.url("/1K.bin"))
    assert got.stdout == dict(builtin_files())["/1K.bin"]
    assert kernel.domains["rv6"].state == "running" and kernel.crashes("rv6") == 0


@pytest.mark.netns
def test_net_up_rv6_command():
    why = missing_requirements(("ip", "ping"))
    if why:
        pytest.skip(why)
    done = subprocess.run([sys.executable, "-m", "redleaf_lab.cli", "net", "up", "--rv6",
                           "--address", "10.84.0.2", "--seconds", "1"],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "Rv6 httpd program" in done.stdout and "curl http://10.84.0.2/" in done.stdout
    namespace = re.search(r"namespace (rl-net-\w+)", done.stdout).group(1)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in names
