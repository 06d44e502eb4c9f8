"""`redleaf-lab bench udp`: UDP echo round trips per second through the lab's stack, next
to a C echo loop and a Python echo loop on Linux's own stack, in one run.

Paths (the client is the same in all: a Python process in the namespace keeping
WINDOW 64-byte datagrams in flight, sending one more per reply, re-arming the window
after 20 ms of silence; it counts replies and losses):
* `netstack echo`: the echo service (RFC 862, httpd domain, port 7) on the netstack
  domain, ixgbe driver behind its shadow, 82599 model, TAP wire into the namespace;
* `C echo (Linux)`: a recvfrom/sendto loop in C (compiled here with cc) on the
  namespace's loopback: Linux's UDP stack, no model: a reference, not the same wire;
* `Python echo (Linux)`: the same loop in Python with the socket module.
* `C loop on the model`: the model's C host loop (ixgbe_host.c, batch 32) sending
  every received frame back, on a generator wire of the same frame size: frames/s,
  the ceiling of any echo over this model. It has no UDP (a C UDP echo on the model
  would be C work in the model, not built here) and no TAP; measured after the others.
Stretches interleave ABC CBA.

`measure(seconds)` returns rows (server, echoes/s, lost) and the ratios; needs root,
/dev/net/tun, ip; the C row needs cc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .goals import method_lines
from .tapstack import TapStack, missing_requirements

WINDOW = 16
METHOD = """Same client for every path: Python in the namespace, 64-byte datagrams, a window of
16 in flight, one new datagram per reply, the window re-armed after 20 ms without a
reply (16 counted lost each time, late replies included). echoes/s = replies /
seconds, summed over stretches in ABC CBA order. netstack echo: httpd's RFC 862 service over the netstack domain, the ixgbe
driver behind its shadow, the 82599 model, a TAP wire. References on the namespace's
loopback (Linux's stack, no model): a C recvfrom/sendto loop and a Python one. The
client (one Python process) limits those two. Last, for scale: the model's C l2fwd-like
loop, frames/s at batch 32 on a generator wire (no UDP, no TAP)."""

CLIENT = r"""
import json, socket, sys, time
host, port, seconds, window = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.02)
payload = b"x" * 64
got = lost = 0
end = time.monotonic() + seconds
for _ in range(window):
    s.sendto(payload, (host, port))
while time.monotonic() < end:
    try:
        s.recvfrom(2048)
        got += 1
        s.sendto(payload, (host, port))
    except socket.timeout:
        lost += window
        for _ in range(window):
            s.sendto(payload, (host, port))
print(json.dumps({"echoes": got, "seconds": seconds, "lost": lost}))
"""

C_ECHO = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1])); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    char buf[2048];
    for (;;) {
        struct sockaddr_in from; socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n >= 0) sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
    }
}
"""

PY_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""


def _client(stack: TapStack, host: str, port: int, seconds: float) -> dict[str, Any]:
    done = stack.run_in_ns("python3", "-c", CLIENT, host, str(port), str(seconds), str(WINDOW),
                           timeout=seconds + 30)
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def measure(seconds: float = 5.0, stretches: int = 2) -> dict[str, Any]:
    why = missing_requirements(("ip",))
    if why:
        raise ValueError(f"bench udp cannot run here: {why}")
    if seconds < 1:
        raise ValueError("--seconds must be >= 1")
    import redleaf_lab

    kernel = redleaf_lab.boot(heap_bytes=256 << 20)
    tmp = tempfile.mkdtemp(prefix="rl-bench-udp-")
    servers: list[subprocess.Popen[bytes]] = []
    runs: dict[str, list[dict[str, Any]]] = {}
    stack = None
    try:
        stack = TapStack(kernel=kernel).start()
        per = seconds / stretches
        paths: list[tuple[str, str, int]] = [("netstack echo", stack.address, 7)]
        if shutil.which("cc"):
            source = Path(tmp) / "echo.c"
            source.write_text(C_ECHO)
            subprocess.run(["cc", "-O2", "-o", str(Path(tmp) / "echo"), str(source)], check=True,
                           capture_output=True, timeout=60)
            servers.append(stack.popen_in_ns(str(Path(tmp) / "echo"), "9007", quiet=True))
            paths.append(("C echo (Linux)", "127.0.0.1", 9007))
        servers.append(stack.popen_in_ns("python3", "-c", PY_ECHO, "9008", quiet=True))
        paths.append(("Python echo (Linux)", "127.0.0.1", 9008))
        _client(stack, "127.0.0.1", 9008, 0.3)  # the servers are up once one answers
        for stretch in range(stretches):
            for name, host, port in (paths if stretch % 2 == 0 else paths[::-1]):
                runs.setdefault(name, []).append(_client(stack, host, port, per))
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        if stack is not None:
            stack.close()
        kernel.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    model_pps = _c_loop_on_model(kernel_bytes=64 << 20, seconds=min(2.0, seconds))
    rows = []
    for name, parts in runs.items():
        echoes = sum(p["echoes"] for p in parts)
        total = sum(p["seconds"] for p in parts)
        rows.append({"server": name, "echoes_per_s": echoes / total, "echoes": echoes,
                     "lost": sum(p["lost"] for p in parts), "seconds": total})
    by = {r["server"]: r["echoes_per_s"] for r in rows}
    ratios = {f"netstack_over_{k.split()[0].lower()}": by["netstack echo"] / v
              for k, v in by.items() if k != "netstack echo" and v}
    rows.append({"server": "C loop on the model", "echoes_per_s": model_pps, "echoes": 0,
                 "lost": 0, "seconds": min(2.0, seconds)})
    ratios["netstack_over_model_c_loop"] = by["netstack echo"] / model_pps if model_pps else 0.0
    return {"rows": rows, "ratios": ratios, "window": WINDOW, "payload_bytes": 64,
            "method": METHOD, "cpus": os.cpu_count()}


def _c_loop_on_model(kernel_bytes: int, seconds: float) -> float:
    """Frames/s of the model's C host loop (ixgbe_host.c: receive a batch of 32, send it
    back) on a fresh 82599 model with a generator wire of 106-byte frames (a 64-byte
    datagram's frame): the most any echo over this model could do, with no UDP in it."""
    import redleaf_lab

    from ..devices.sim_ixgbe import SimIxgbe

    kernel = redleaf_lab.boot(heap_bytes=kernel_bytes)
    try:
        device = SimIxgbe(kernel.heap, wire="generator", packet_size=110)
        try:
            result = device.run_c_forward(batch=32, seconds=seconds)
        finally:
            device.close()
        return float(result["packets"]) / float(result["seconds"])
    finally:
        kernel.shutdown()


def format_table(result: dict[str, Any]) -> str:
    lines = [f"bench udp: echo round trips, window {result['window']}, "
             f"{result['payload_bytes']}-byte datagrams", "",
             f"{'server':<22}{'echoes/s':>12}{'lost':>8}"]
    for row in result["rows"]:
        lines.append(f"{row['server']:<22}{row['echoes_per_s']:>12,.0f}{row['lost']:>8}")
    lines.append("")
    for name, value in result["ratios"].items():
        lines.append(f"  {name:<26} {value:.3g}")
    return "\n".join([*lines, "", *method_lines(result["method"])])
