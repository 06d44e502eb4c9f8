"""The network stack's observation: a frame decoder, the live packet log widget, and
the counters report behind `%redleaf net`.

    describe(frame)                -> "ARP who-has 10.78.0.2 tell 10.78.0.1" / "TCP ... [S.] seq=.."
    log = PacketLog(stack)          # stack: a Socket proxy (netstack) or its shadow
    log.widget                      # an HTML box, newest lines at the bottom
    log.refresh()                   # pull what the stack recorded since the last call
    CountersView(stack).widget      # a table of every drop reason; .refresh() re-reads
    net_report(stack)               # text: census, events, and every drop reason

`PacketLog` turns the stack's frame trace on (`Socket.trace`) and pulls it: it reads
only what the stack hands out through its interface, never the domain's internals.
`stop()` turns tracing off. The decoder is plain Python over bytes and never raises:
a frame it cannot read is shown as such. Not thread safe: refresh from one thread.
"""

from __future__ import annotations

import html
import struct
from typing import Any

TCP_FLAGS = ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"))


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def describe(frame: bytes) -> str:
    """One line for one Ethernet frame (tcpdump-like)."""
    try:
        return _describe(frame)
    except (IndexError, struct.error):
        return f"malformed frame of {len(frame)} bytes"


def _describe(frame: bytes) -> str:
    if len(frame) < 14:
        return f"runt frame of {len(frame)} bytes"
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    body = frame[14:]
    if ethertype == 0x0806:
        op = struct.unpack_from("!H", body, 6)[0]
        sender, target = _ip(body[14:18]), _ip(body[24:28])
        if op == 1:
            kind = "announce" if sender == target else f"who-has {target} tell"
            return f"ARP {kind} {sender}" if sender != target else f"ARP announce {sender}"
        return f"ARP reply {sender} is-at {body[8:14].hex(':')}"
    if ethertype != 0x0800:
        return f"ethertype 0x{ethertype:04x}, {len(frame)} bytes"
    ihl = (body[0] & 0xF) * 4
    proto = body[9]
    src, dst = _ip(body[12:16]), _ip(body[16:20])
    payload = body[ihl:]
    if proto == 6:
        sport, dport, seq, ack, off_flags, win = struct.unpack_from("!HHIIHH", payload)
        flags = "".join(ch for bit, ch in TCP_FLAGS if off_flags & bit)
        data = len(payload) - (off_flags >> 12) * 4
        total = struct.unpack_from("!H", body, 2)[0]
        data = total - ihl - (off_flags >> 12) * 4
        return (f"TCP {src}:{sport} > {dst}:{dport} [{flags}] seq={seq}"
                + (f" ack={ack}" if off_flags & 0x10 else "") + f" win={win} len={max(data, 0)}")
    if proto == 17:
        sport, dport, length = struct.unpack_from("!HHH", payload)
        return f"UDP {src}:{sport} > {dst}:{dport} len={length - 8}"
    if proto == 1:
        kinds = {0: "echo reply", 8: "echo request", 3: "unreachable"}
        return f"ICMP {src} > {dst} {kinds.get(payload[0], f'type {payload[0]}')}"
    return f"IP {src} > {dst} protocol {proto}"


class PacketLog:
    """A live log of the frames a netstack receives (<) and sends (>)."""

    def __init__(self, stack: Any, lines: int = 40) -> None:
        import ipywidgets as w

        self.stack = stack
        self.lines: list[str] = []
        self.limit = lines
        self.start: float | None = None
        self.widget = w.HTML(layout=w.Layout(width="100%"))
        self.stack.trace(True)
        self._render()

    def refresh(self) -> list[str]:
        """Append the frames recorded since the last refresh; returns the new lines."""
        new = []
        for when, direction, frame in self.stack.trace(True):
            if self.start is None:
                self.start = when
            arrow = "<" if direction == 0 else ">"
            new.append(f"{when - self.start:9.4f} {arrow} {describe(frame)}")
        self.lines = (self.lines + new)[-self.limit:]
        self._render()
        return new

    def stop(self) -> None:
        self.stack.trace(False)

    def _render(self) -> None:
        text = "\n".join(self.lines) or "(no frames yet)"
        self.widget.value = (f"<pre style='font-size:11px;max-height:360px;overflow:auto'>"
                             f"{html.escape(text)}</pre>")


class CountersView:
    """A table of the stack's drop reasons and main events; `refresh()` re-reads them
    through the Socket interface (counters and census)."""

    def __init__(self, stack: Any) -> None:
        import ipywidgets as w

        self.stack = stack
        self.widget = w.HTML()
        self.refresh()

    def refresh(self) -> dict[str, int]:
        counters = dict(self.stack.counters())
        rows = [(k[5:], v) for k, v in sorted(counters.items()) if k.startswith("drop_")]
        rows.append(("total dropped", counters.get("dropped", 0)))
        cells = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{v:,}</td></tr>"
                        for k, v in rows)
        self.widget.value = f"<table><tr><th>drop reason</th><th>frames</th></tr>{cells}</table>"
        return counters


def net_report(stack: Any) -> str:
    """The stack's census, its events and every drop reason, as a small table."""
    census = dict(stack.census())
    counters = dict(stack.counters())
    drops = {k[5:]: v for k, v in counters.items() if k.startswith("drop_")}
    events = {k: v for k, v in counters.items() if not k.startswith("drop") and v}
    lines = ["census: " + ", ".join(f"{k} {v}" for k, v in census.items()), "",
             f"dropped {counters.get('dropped', 0)} frames:"]
    lines += [f"  {name:<30} {value:>10,}" for name, value in sorted(drops.items())] or ["  (none)"]
    lines += ["", "events:"]
    lines += [f"  {name:<30} {value:>10,}" for name, value in sorted(events.items())]
    return "\n".join(lines)
