"""Observation of the stack: `%redleaf net` (census and every drop reason), the frame
decoder and the live packet log widget (frames pulled through Socket.trace)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest
from IPython.core.interactiveshell import InteractiveShell

from redleaf_lab.jupyter.magics import Record
from redleaf_lab.widgets.netlog import CountersView, PacketLog, describe

from .frames import ACK, CLIENT_IP, CLIENT_MAC, SERVER_IP, SYN, eth, tcp, udp
from .wire import Wire


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "redleaf_lab")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "redleaf_lab")


def test_describe_decodes_arp_ip_tcp_flags_and_survives_garbage():
    line = describe(tcp(40000, 80, 7, 9, SYN | ACK, mss=1460))
    assert line.startswith("TCP 10.9.0.1:40000 > 10.9.0.2:80 [S.] seq=7 ack=9 win=65535 len=0")
    assert describe(udp(5, 7, b"abc")) == "UDP 10.9.0.1:5 > 10.9.0.2:7 len=3"
    assert describe(b"\x01\x02") == "runt frame of 2 bytes"
    assert describe(tcp(1, 2, 3, 4, ACK)[:20]) == "malformed frame of 20 bytes"


def test_redleaf_net_magic_and_the_packet_log(shell: InteractiveShell,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("redleaf", "boot --bare")
    kernel = shell.user_ns["kernel"]
    wire = Wire()
    net = kernel.load(str(Path(__file__).parent / "wirenet"), wire=wire)
    untraced = kernel.load("netstack", name="plain", net=net, address=(10, 9, 0, 3), options=())
    wire.inject(tcp(40000, 81, 1, 0, SYN))
    untraced.trace(True)
    untraced.pump(1)
    assert untraced.trace(True) == ()  # tracing needs the trusted side's ("trace", True)
    kernel.stop("plain")
    stack = kernel.load("netstack", net=net, address=(10, 9, 0, 2), options=(("trace", True),))
    log = PacketLog(stack)
    who_has = dpkt.arp.ARP(op=1, sha=CLIENT_MAC, spa=CLIENT_IP, tha=b"\0" * 6, tpa=SERVER_IP)
    wire.inject(eth(bytes(who_has), 0x0806, dst=b"\xff" * 6))  # the stack learns our MAC
    wire.inject(tcp(40000, 81, 1, 0, SYN))  # a closed port: answered with RST
    wire.inject(b"\x00" * 12)  # a runt
    stack.pump(2)
    lines = log.refresh()
    assert any("< ARP who-has 10.9.0.2 tell 10.9.0.1" in x for x in lines)
    assert any("< TCP 10.9.0.1:40000 > 10.9.0.2:81 [S]" in x for x in lines)
    assert any("> TCP 10.9.0.2:81 > 10.9.0.1:40000 [R.]" in x for x in lines)
    assert "[R.]" in log.widget.value
    log.stop()
    stack.pump(1)
    assert stack.trace(False) == ()  # nothing recorded once off
    view = CountersView(stack)
    assert "<td>eth_runt</td>" in view.widget.value and view.refresh()["drop_eth_runt"] == 1
    record = shell.run_line_magic("redleaf", "net")
    out = capsys.readouterr().out
    assert isinstance(record, Record)
    assert record["counters"]["drop_eth_runt"] == 1 and record["census"]["sockets"] == 0
    assert "eth_runt" in out and "tcp_no_connection" in out
    with pytest.raises(KeyError):
        shell.run_line_magic("redleaf", "net nosuchstack")
