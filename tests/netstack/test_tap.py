"""Real clients through the TAP wire: Linux's own stack in a namespace the test creates
(and deletes) talks to the lab's netstack and httpd over the ixgbe driver behind its
shadow and the 82599 model: ping, `nc -u` to the UDP echo service, curl for every
file (bodies compared byte for byte), wrk with zero errors, wrk again while the driver
is panicked every second, and a crash of the stack domain itself: an open keep-alive
connection gets a RST (not a hang) and new connections are served at once.
Needs root, /dev/net/tun, ip, ping, nc, curl and wrk (CI installs them)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import pytest
from redleaf_lab.domains.httpd.site import builtin_files

from redleaf_lab.bench.tapstack import TapStack, missing_requirements

TOOLS = ("ip", "ping", "nc", "curl", "wrk")

KEEPALIVE_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
s.sendall(req)
got = b""
while not got.endswith(b"</html>\n"):
    got += s.recv(4096)
print("first", len(got), flush=True)
sys.stdin.readline()
try:
    s.sendall(req)
    data = s.recv(4096)
    print("eof" if not data else "data", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except socket.timeout:
    print("hang", flush=True)
"""


@pytest.fixture
def tapstack(kernel):
    why = missing_requirements(TOOLS)
    if why:
        pytest.skip(why)
    with TapStack(kernel=kernel) as stack:
        yield stack
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert stack.namespace not in names  # cleaned up


def wrk(stack: TapStack, seconds: int) -> tuple[int, str]:
    done = stack.run_in_ns("wrk", "-t", "2", "-c", "20", "-d", str(seconds), stack.url("/"),
                           timeout=seconds + 30)
    out = done.stdout.decode()
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return requests, out


@pytest.mark.netns
def test_linux_clients_through_the_tap_wire(tapstack, kernel):
    stack = tapstack
    ping = stack.run_in_ns("ping", "-c", "3", "-i", "0.2", "-W", "2", stack.address)
    assert b" 3 received" in ping.stdout
    echo = stack.run_in_ns("nc", "-u", "-w", "1", stack.address, "7", input=b"hello redleaf\n")
    assert echo.stdout == b"hello redleaf\n"
    for path, body in builtin_files():
        got = stack.run_in_ns("curl", "-s", "--max-time", "10", stack.url(path))
        assert got.stdout == body, path
    head = stack.run_in_ns("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", stack.url("/none"))
    assert head.stdout == b"404"
    bad = stack.run_in_ns("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "-H", "Host:", stack.url("/"))  # HTTP/1.1 without Host: 400
    assert bad.stdout == b"400"
    requests, out = wrk(stack, 3)
    assert requests > 100 and "Socket errors" not in out and "Non-2xx" not in out, out
    assert not stack.errors


@pytest.mark.netns
def test_wrk_sees_no_error_while_the_driver_is_panicked_every_second(tapstack, kernel):
    stack = tapstack
    stop = threading.Event()

    def panic_every_second() -> None:
        while not stop.wait(1.0):
            kernel.panic("ixgbe")

    panicker = threading.Thread(target=panic_every_second)
    panicker.start()
    try:
        requests, out = wrk(stack, 4)
    finally:
        stop.set()
        panicker.join()
    assert kernel.crashes("ixgbe") >= 3 and kernel.restarts("ixgbe") >= 3
    assert requests > 100 and "Socket errors" not in out and "Non-2xx" not in out, out
    assert not stack.errors


@pytest.mark.netns
def test_stack_crash_resets_open_connections_and_serves_new_ones(tapstack, kernel):
    stack = tapstack
    client = stack.popen_in_ns_stdin("python3", "-c", KEEPALIVE_CLIENT, stack.address)
    try:
        assert client.stdout.readline().startswith(b"first 7")  # head + 636-byte body
        kernel.panic("netstack")
        deadline = time.monotonic() + 10
        while kernel.restarts("netstack") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert kernel.restarts("netstack") == 1
        client.stdin.write(b"go\n")
        client.stdin.flush()
        assert client.stdout.readline().strip() in (b"reset", b"eof")  # never "hang"
    finally:
        client.kill()
        client.wait()
    got = stack.run_in_ns("curl", "-s", "--max-time", "10", stack.url("/1K.bin"))
    assert got.stdout == dict(builtin_files())["/1K.bin"]


@pytest.mark.netns
def test_net_up_command_brings_the_stack_up_and_deletes_everything(tmp_path):
    why = missing_requirements(("ip", "ping"))
    if why:
        pytest.skip(why)
    (tmp_path / "hello.txt").write_bytes(b"hello from a folder\n")
    done = subprocess.run([sys.executable, "-m", "redleaf_lab.cli", "net", "up", "--address",
                           "10.81.0.2", "--seconds", "1", "--folder", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    namespace = re.search(r"namespace (rl-net-\w+)", done.stdout).group(1)
    assert "curl http://10.81.0.2/" in done.stdout and "served 0 requests" in done.stdout
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in names
