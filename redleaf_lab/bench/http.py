"""`redleaf-lab bench http`: wrk against this project's httpd and two reference servers.

Paths, all measured in one run with wrk (-t2, `connections` connections, GET / of the
636-byte index) from inside one network namespace:
* `httpd direct`: the httpd and netstack domains on the ixgbe driver (no shadow) over
  the 82599 model, whose wire is a TAP device in the namespace;
* `httpd shadow`: the same with the driver behind its shadow;
* `httpd shadow+panic`: the same, the driver panicked every second during the run;
* `rv6 httpd shadow`: the Rv6 httpd program (`httpd -w 2 /www`: two processes, loaded
  from Rv6's file system, reading each file from it per request) over Rv6's socket
  calls, the netstack and the ixgbe driver behind its shadow (the paper's "Rv6 +
  shadow" row);
* `nginx`: Debian's nginx (one worker, access log off) serving the same files on the
  namespace's loopback; `python http.server`: `python3 -m http.server --protocol
  HTTP/1.1` (ThreadingHTTPServer, keep-alive) and `python http.server 1.0` (the
  default: HTTP/1.0, one connection per request), on the namespace's loopback.
The references use Linux's loopback, which costs less than a TAP round trip: the
comparison favours them, and the table says so.

Interleaving: each path runs `stretches` stretches of seconds/stretches s, in ABCD
DCBA order, so a drift of this shared 2-core VM weighs on every path alike. Per path:
requests/s = total requests / total seconds; latency p50/p99 = the worst stretch's
(wrk reports percentiles per run); errors = wrk's socket errors + non-2xx responses.

`measure(seconds, connections, stretches)` returns the JSON-ready dict (rows, ratios,
goals, method); `format_table(result)` renders it. Needs root, /dev/net/tun, ip, wrk;
nginx rows are skipped (and their goal MISSED) where nginx is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .goals import Goal, goal_lines, goals_json, method_lines
from .tapstack import TapStack, missing_requirements

PAPER = {"nginx_linux_rps": 70_900, "redleaf_httpd_rps": 212_000, "rv6_shadow_rps": 178_900}
METHOD = """wrk -t2 -cN GET / (636-byte index, keep-alive) from one network namespace.
httpd paths: netstack + httpd domains on the ixgbe driver over the 82599 model, wire =
TAP in the namespace (direct; behind the shadow; behind the shadow with a panic every
second); the Rv6 httpd program (2 processes) on the same kind of stack, driver behind
the shadow. References on the namespace's loopback (cheaper than a TAP round trip):
nginx (1 worker, access_log off) and python3 -m http.server, both with --protocol
HTTP/1.1 (keep-alive) and as it comes (HTTP/1.0, a connection per request); the goal
uses the faster.
Interleaved: stretches in ABCD DCBA order; requests/s = total requests / total time
per path; p50/p99 = worst stretch; errors = socket errors + non-2xx."""

NGINX_CONF = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def parse_wrk(out: str) -> dict[str, Any]:
    """requests, seconds, rps, p50/p99 latency (ms) and errors from `wrk --latency`."""
    def ms(label: str) -> float | None:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return None
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    if not done:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    seconds = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return {"requests": int(done.group(1)), "seconds": seconds, "p50_ms": ms("50"),
            "p99_ms": ms("99"), "errors": errors}


def write_site(folder: Path) -> None:
    from ..domains.httpd.site import builtin_files

    for path, body in builtin_files():
        (folder / path.lstrip("/")).write_bytes(body)
    (folder / "index.html").write_bytes(dict(builtin_files())["/index.html"])


class _Reference:
    """A reference server process inside the namespace, on its loopback."""

    def __init__(self, stack: TapStack, name: str, cmd: list[str], port: int) -> None:
        self.name, self.port = name, port
        self.proc = stack.popen_in_ns(*cmd, quiet=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = stack.run_in_ns("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                    f"http://127.0.0.1:{port}/", check=False, timeout=5)
            if probe.stdout == b"200":
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not come up on 127.0.0.1:{port}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wrk(stack: TapStack, url: str, seconds: float, connections: int) -> dict[str, Any]:
    done = stack.run_in_ns("wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                           "--latency", url, timeout=seconds + 60)
    return parse_wrk(done.stdout.decode())


def measure(seconds: float = 10.0, connections: int = 20, stretches: int = 2) -> dict[str, Any]:
    why = missing_requirements(("ip", "wrk", "curl"))
    if why:
        raise ValueError(f"bench http cannot run here: {why}")
    if not 1 <= connections <= 1000 or seconds < 2 or stretches < 1:
        raise ValueError("need --connections 1..1000, --seconds >= 2, stretches >= 1")
    import redleaf_lab

    kernel = redleaf_lab.boot(heap_bytes=256 << 20)
    per = max(1.0, seconds / stretches)
    runs: dict[str, list[dict[str, Any]]] = {}
    references: list[_Reference] = []
    tmp = tempfile.mkdtemp(prefix="rl-bench-http-")
    direct = shadowed = rv6 = None
    try:
        os.chmod(tmp, 0o755)  # nginx's worker runs as an unprivileged user
        write_site(Path(tmp))
        (Path(tmp) / "ngx").mkdir()
        shadowed = TapStack(kernel=kernel, shadow=True).start()
        direct = TapStack(kernel=kernel, shadow=False, address="10.79.0.2", peer="10.79.0.1",
                          suffix="-direct").start()
        rv6 = TapStack(kernel=kernel, shadow=True, address="10.80.0.2", peer="10.80.0.1",
                       suffix="-rv6", rv6_workers=2).start()
        if shutil.which("nginx"):
            conf = Path(tmp) / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=Path(tmp) / "ngx", port=8081, root=tmp))
            references.append(_Reference(shadowed, "nginx", ["nginx", "-c", str(conf), "-e",
                                                             str(Path(tmp) / "ngx" / "error.log")], 8081))
        references.append(_Reference(shadowed, "python http.server", [
            "python3", "-m", "http.server", "--protocol", "HTTP/1.1", "--bind", "127.0.0.1",
            "--directory", tmp, "8082"], 8082))
        references.append(_Reference(shadowed, "python http.server 1.0", [
            "python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", tmp, "8083"],
            8083))
        driver = shadowed.names["ixgbe"]

        def panicked() -> dict[str, Any]:
            stop = threading.Event()
            before = kernel.crashes(driver)

            def panic_every_second() -> None:
                while not stop.wait(1.0):
                    kernel.panic(driver)

            thread = threading.Thread(target=panic_every_second)
            thread.start()
            try:
                row = _wrk(shadowed, shadowed.url("/"), per, connections)
            finally:
                stop.set()
                thread.join()
            row["panics"] = kernel.crashes(driver) - before
            return row

        order: list[tuple[str, Any, Any]] = [
            ("httpd direct", direct, lambda: _wrk(direct, direct.url("/"), per, connections)),
            ("httpd shadow", shadowed, lambda: _wrk(shadowed, shadowed.url("/"), per, connections)),
            ("httpd shadow+panic", shadowed, panicked),
            ("rv6 httpd shadow", rv6, lambda: _wrk(rv6, rv6.url("/"), per, connections))]
        for ref in references:
            url = f"http://127.0.0.1:{ref.port}/"
            order.append((ref.name, None, lambda url=url: _wrk(shadowed, url, per, connections)))
        for stretch in range(stretches):
            for name, serving, run in (order if stretch % 2 == 0 else order[::-1]):
                # only the measured stack runs; the others' loops and model threads sleep
                for candidate in (direct, shadowed, rv6):
                    if candidate is serving:
                        candidate.resume()
                    else:
                        candidate.pause()
                runs.setdefault(name, []).append(run())
    finally:
        for ref in references:
            ref.stop()
        for stack in (direct, shadowed, rv6):
            if stack is not None:
                stack.close()
        kernel.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return summarise(runs, seconds, connections, stretches)


def summarise(runs: dict[str, list[dict[str, Any]]], seconds: float, connections: int,
              stretches: int) -> dict[str, Any]:
    rows = []
    for name, parts in runs.items():
        total_requests = sum(p["requests"] for p in parts)
        total_seconds = sum(p["seconds"] for p in parts)
        p50 = [p["p50_ms"] for p in parts if p["p50_ms"] is not None]
        p99 = [p["p99_ms"] for p in parts if p["p99_ms"] is not None]
        row = {"server": name, "path": "/ (636 B)", "requests": total_requests,
               "seconds": round(total_seconds, 3),
               "rps": total_requests / total_seconds if total_seconds else 0.0,
               "p50_ms": max(p50) if p50 else None, "p99_ms": max(p99) if p99 else None,
               "errors": sum(p["errors"] for p in parts)}
        if any("panics" in p for p in parts):
            row["panics"] = sum(p.get("panics", 0) for p in parts)
        rows.append(row)
    by = {r["server"]: r for r in rows}

    def ratio(a: str, b: str) -> float | None:
        if a in by and b in by and by[b]["rps"]:
            return by[a]["rps"] / by[b]["rps"]
        return None

    result: dict[str, Any] = {
        "rows": rows, "seconds": seconds, "connections": connections, "stretches": stretches,
        "model": "ixgbe driver domain over the 82599 C model, TAP wire",
        "ratios": {"httpd_over_python": ratio("httpd shadow", best_python(by)),
                   "httpd_over_nginx": ratio("httpd shadow", "nginx"),
                   "direct_over_nginx": ratio("httpd direct", "nginx"),
                   "panic_over_shadow": ratio("httpd shadow+panic", "httpd shadow"),
                   "rv6_over_shadow": ratio("rv6 httpd shadow", "httpd shadow"),
                   "rv6_over_nginx": ratio("rv6 httpd shadow", "nginx")},
        "paper": PAPER, "method": METHOD,
    }
    result["goals"] = goals_json(goals(result))
    return result


def best_python(by: dict[str, dict[str, Any]]) -> str:
    """The faster of the two http.server rows (keep-alive HTTP/1.1, or the default
    HTTP/1.0 with a connection per request): the goal compares with the better one."""
    names = [n for n in ("python http.server", "python http.server 1.0") if n in by]
    return max(names, key=lambda n: by[n]["rps"]) if names else "python http.server"


def goals(result: dict[str, Any]) -> list[Goal]:
    ratios = result["ratios"]
    by = {r["server"]: r for r in result["rows"]}
    panic = by.get("httpd shadow+panic")
    return [
        Goal("httpd/python>=1.0", "httpd (shadow) / best python http.server requests/s",
             ratios.get("httpd_over_python"), 1.0, ">="),
        Goal("httpd/nginx>=0.25", "httpd (shadow) / nginx requests/s",
             ratios.get("httpd_over_nginx"), 0.25, ">="),
        Goal("panic/shadow>=0.9", "driver panicked every second / fault-free requests/s",
             ratios.get("panic_over_shadow"), 0.9, ">="),
        Goal("panic_errors==0", "failed requests with the driver panicked",
             None if panic is None else float(panic["errors"]), 0.0, "=="),
    ]


def format_table(result: dict[str, Any]) -> str:
    lines = [f"bench http: wrk -t2 -c{result['connections']}, {result['seconds']:g} s per path "
             f"in {result['stretches']} stretches; {result['model']}; references on the "
             f"namespace's loopback", "",
             f"{'server':<22}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests':>10}"]
    for row in result["rows"]:
        p50 = "n/a" if row["p50_ms"] is None else f"{row['p50_ms']:.2f}"
        p99 = "n/a" if row["p99_ms"] is None else f"{row['p99_ms']:.2f}"
        extra = f"  ({row['panics']} panics)" if "panics" in row else ""
        lines.append(f"{row['server']:<22}{row['rps']:>12,.0f}{p50:>9}{p99:>9}{row['errors']:>8}"
                     f"{row['requests']:>10}{extra}")
    lines.append("")
    for name, value in result["ratios"].items():
        lines.append(f"  {name:<20} {'n/a' if value is None else f'{value:.3f}'}")
    paper = result["paper"]
    lines += ["", f"paper (bare metal, Rust): nginx {paper['nginx_linux_rps']:,}, RedLeaf httpd "
                  f"{paper['redleaf_httpd_rps']:,}, Rv6 + shadow {paper['rv6_shadow_rps']:,} requests/s",
              "", *method_lines(result["method"]), "", *goal_lines(goals(result))]
    return "\n".join(lines)



def compare_servers(stack: TapStack, seconds: float = 1.0,
                    connections: int = 20) -> list[dict[str, Any]]:
    """A short comparison on a running TapStack (the lab's): wrk for `seconds` against
    its httpd, nginx and python http.server (HTTP/1.1) on the namespace's loopback, in
    that order; returns one row each (server, rps, p50_ms, p99_ms, errors). The full,
    interleaved measurement is `measure`."""
    tmp = tempfile.mkdtemp(prefix="rl-compare-")
    refs: list[_Reference] = []
    try:
        os.chmod(tmp, 0o755)
        write_site(Path(tmp))
        (Path(tmp) / "ngx").mkdir()
        if shutil.which("nginx"):
            conf = Path(tmp) / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=Path(tmp) / "ngx", port=8081, root=tmp))
            refs.append(_Reference(stack, "nginx", ["nginx", "-c", str(conf), "-e",
                                                    str(Path(tmp) / "ngx" / "error.log")], 8081))
        refs.append(_Reference(stack, "python http.server", [
            "python3", "-m", "http.server", "--protocol", "HTTP/1.1", "--bind", "127.0.0.1",
            "--directory", tmp, "8082"], 8082))
        rows = []
        targets = [("httpd (this stack)", stack.url("/"))]
        targets += [(ref.name, f"http://127.0.0.1:{ref.port}/") for ref in refs]
        for name, url in targets:
            result = _wrk(stack, url, seconds, connections)
            rows.append({"server": name, "rps": result["requests"] / result["seconds"],
                         "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
                         "errors": result["errors"]})
        return rows
    finally:
        for ref in refs:
            ref.stop()
        shutil.rmtree(tmp, ignore_errors=True)
