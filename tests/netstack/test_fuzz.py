"""Bad input: 12,000 random and mutated frames (truncated headers, wrong lengths, bad
checksums, IP options, fragments, a TCP segment with every flag set, random bytes) go
through the netstack DOMAIN (over the wirenet test driver) while it serves; each one is
counted and dropped or handled, the domain never panics, and a real client is served
afterwards. A sans-I/O run checks the accounting frame by frame."""

from __future__ import annotations

import random
import struct

from redleaf_lab.domains.netstack.inet import checksum, pseudo_sum
from redleaf_lab.domains.netstack.sockets import STREAM

from .frames import ACK, FIN, PSH, RST, SYN, Host, eth, ip_packet, tcp, udp
from .wire import SERVER_NUMBER, Peer, Wire

URG, ECE, CWR = 0x20, 0x40, 0x80
ALL_FLAGS = FIN | SYN | RST | PSH | ACK | URG | ECE | CWR


def refresh_checksums(frame: bytearray) -> None:
    """Make the IPv4 header checksum (and the TCP/UDP one) right again after a mutation,
    so the mutation reaches the deeper layers instead of dying at the first check."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return
    ihl = (frame[14] & 0xF) * 4
    if ihl < 20 or len(frame) < 14 + ihl:
        return
    frame[24:26] = b"\0\0"
    frame[24:26] = struct.pack("!H", checksum(bytes(frame[14:14 + ihl])))
    proto, body = frame[23], frame[14 + ihl:]
    where = {6: 16, 17: 6}.get(proto)
    if where is None or len(body) < where + 2:
        return
    start = 14 + ihl + where
    frame[start:start + 2] = b"\0\0"
    value = checksum(bytes(frame[14 + ihl:]), pseudo_sum(bytes(frame[26:30]), bytes(frame[30:34]),
                                                          proto, len(body)))
    frame[start:start + 2] = struct.pack("!H", value)


def seeds(rng: random.Random) -> list[bytes]:
    icmp = bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"payload!"
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    return [
        tcp(41000, 80, 5000, 0, SYN, mss=1460),
        tcp(41001, 80, 5000, 77, ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        tcp(41002, 80, 5000, 77, ALL_FLAGS, b"every flag"),
        tcp(41003, 81, 5000, 0, FIN | PSH | URG),
        udp(5000, 7, b"echo me"),
        udp(5000, 9, b"closed port"),
        eth(ip_packet(1, icmp)),
        eth(bytes.fromhex("0001080006040001") + b"\x02\x52\x4c\x00\x00\x02" + bytes([10, 9, 0, 1])
            + bytes(6) + bytes([10, 9, 0, 2]), 0x0806),
    ]


def mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    kind = rng.randrange(9)
    if kind == 0:  # truncate anywhere, headers included
        data = data[:rng.randrange(len(data) + 1)]
    elif kind == 1:  # flip bytes
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # wrong IP total length
        data[16:18] = struct.pack("!H", rng.choice([0, 19, 21, len(data), 1500, 65535]))
    elif kind == 3:  # IP options claimed (IHL 6..15)
        data[14] = 0x40 | rng.randrange(6, 16)
    elif kind == 4:  # a fragment (MF and/or an offset)
        data[20:22] = struct.pack("!H", rng.choice([0x2000, 0x0001, 0x2010, 0x1FFF]))
    elif kind == 5:  # TCP flag soup / data offset nonsense
        if len(data) > 47:
            data[47] = rng.randrange(256)
            data[46] = rng.randrange(256)
    elif kind == 6:  # garbage appended (padding or a lie about lengths)
        data += rng.randbytes(rng.randrange(1, 64))
    elif kind == 7:  # a random ethertype or version
        data[12 + rng.randrange(3)] = rng.randrange(256)
    else:  # random options area
        if len(data) > 60:
            data[54:60] = rng.randbytes(6)
    if rng.random() < 0.6:
        refresh_checksums(data)
    return bytes(data[:1514])


def fuzz_frames(count: int, seed: int = 2026) -> list[bytes]:
    rng = random.Random(seed)
    base = seeds(rng)
    frames = []
    for i in range(count):
        if i % 5 == 0:
            dst = rng.choice([b"\x02\x52\x4c\x00\x00\x01", b"\xff" * 6, rng.randbytes(6)])
            frames.append(dst + rng.randbytes(rng.randrange(0, 1500)))
        else:
            frames.append(mutate(rng, rng.choice(base)))
    return frames


def test_every_fuzz_frame_is_accounted_for_and_nothing_raises():
    host = Host()
    host.listen()
    frames = fuzz_frames(10_000, seed=7)
    for frame in frames:
        before = (host.count("dropped"), host.count("ip_in"), host.count("arp_in"))
        host.feed(frame)
        after = (host.count("dropped"), host.count("ip_in"), host.count("arp_in"))
        assert after != before, frame.hex()  # dropped (with a reason) or taken in
    counts = dict(host.stack.counters.items())
    reasons = {k: v for k, v in counts.items() if k.startswith("drop_")}
    assert sum(reasons.values()) == counts["dropped"]
    for reason in ("eth_other_host", "ip_bad_checksum", "ip_options", "ip_fragment",
                   "ip_bad_length", "tcp_bad_flags", "tcp_bad_checksum", "udp_bad_checksum"):
        assert reasons.get("drop_" + reason, 0) > 0, reason
    for _ in range(130):  # the half-open connections the SYNs made time out (63 s)
        host.advance(1.0)
    assert not host.stack.tcp.connections


def test_netstack_domain_survives_fuzzing_and_serves_a_client_after(kernel):
    wire = Wire()
    net = kernel.load(str(__import__("pathlib").Path(__file__).parent / "wirenet"), wire=wire)
    stack = kernel.load("netstack", net=net, address=(10, 9, 0, 2), options=(("time_wait", 0.2),))
    httpd = kernel.load("httpd", sockets=stack, files=None, options=())
    frames = fuzz_frames(12_000)
    for start in range(0, len(frames), 256):
        for frame in frames[start:start + 256]:
            wire.inject(frame)
        httpd.run(2, 0)
        wire.take()
    while wire.inbound:
        httpd.run(1, 0)
    counts = dict(stack.counters())
    assert counts["frames_in"] >= 12_000 and counts["dropped"] > 9_000
    assert kernel.domains["netstack"].state == "running" and kernel.crashes("netstack") == 0
    peer = Peer(wire, seed=11)
    fd = peer.socket(STREAM)
    peer.connect(fd, SERVER_NUMBER, 80)
    got, sent = b"", False
    for _ in range(200):
        peer.exchange(0.001)
        httpd.run(1, 0)
        if not sent and peer.poll((fd,), (4,))[0] & 4:
            peer.send(fd, b"GET /index.html HTTP/1.1\r\nHost: 10.9.0.2\r\n\r\n")
            sent = True
        n, data = peer.recv(fd, 1 << 16)
        if n > 0:
            got += data
        if got.endswith(b"</html>\n"):
            break
    assert got.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 636" in got
