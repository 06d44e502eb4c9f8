"""`bench http`'s reading of wrk and its goals (which must be able to say MISSED), and
`net up`'s address checks. The measurement itself runs in `redleaf-lab bench http`."""

from __future__ import annotations

import pytest

from redleaf_lab.bench.http import goals, parse_wrk, summarise
from redleaf_lab.commands.net import peer_of, read_folder

WRK = """Running 4s test @ http://10.78.0.2/
  2 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.68ms    1.61ms  14.56ms   87.91%
  Latency Distribution
     50%  850.00us
     75%    2.78ms
     90%    4.01ms
     99%    1.20s
  31842 requests in 4.00s, 22.08MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   7960.64
"""


def test_parse_wrk_reads_requests_latency_units_and_errors():
    row = parse_wrk(WRK)
    assert row["requests"] == 31842 and row["seconds"] == 4.0
    assert row["p50_ms"] == pytest.approx(0.85) and row["p99_ms"] == pytest.approx(1200.0)
    assert row["errors"] == 2 + 3 + 4
    with pytest.raises(RuntimeError):
        parse_wrk("wrk: connection refused")


def run(requests: int, errors: int = 0, seconds: float = 1.0) -> dict:
    return {"requests": requests, "seconds": seconds, "p50_ms": 1.0, "p99_ms": 2.0,
            "errors": errors}


def test_goals_are_met_or_missed_by_what_was_measured():
    good = summarise({"httpd shadow": [run(1000)], "httpd shadow+panic": [run(950)],
                      "nginx": [run(3000)], "python http.server": [run(500)],
                      "python http.server 1.0": [run(800)]}, 1.0, 20, 1)
    assert all(g["met"] for g in good["goals"].values())
    assert good["ratios"]["httpd_over_python"] == pytest.approx(1000 / 800)  # the faster one
    bad = summarise({"httpd shadow": [run(1000)], "httpd shadow+panic": [run(800, errors=1)],
                     "python http.server": [run(1200)]}, 1.0, 20, 1)
    status = {name: g["status"] for name, g in bad["goals"].items()}
    assert status == {"httpd/python>=1.0": "MISSED", "httpd/nginx>=0.25": "MISSED",
                      "panic/shadow>=0.9": "MISSED", "panic_errors==0": "MISSED"}
    assert [g.status for g in goals(bad)].count("MISSED") == 4


def test_net_up_derives_the_peer_and_refuses_bad_addresses():
    assert peer_of("10.78.0.2") == "10.78.0.1" and peer_of("10.78.0.1") == "10.78.0.2"
    for bad in ("10.78.0", "10.78.0.256", "10.78.0.0", "10.78.0.255", "host"):
        with pytest.raises(ValueError):
            peer_of(bad)


def test_net_up_reads_a_folder_on_the_trusted_side(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_bytes(b"<p>hi</p>")
    (tmp_path / "sub" / "a.bin").write_bytes(b"\x00\x01")
    assert read_folder(str(tmp_path)) == (("/index.html", b"<p>hi</p>"), ("/sub/a.bin", b"\x00\x01"))
    with pytest.raises(ValueError):
        read_folder(str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        read_folder(str(tmp_path), limit=4)
