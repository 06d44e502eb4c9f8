"""Checksums, Ethernet, ARP, IPv4, ICMP and UDP with hand-built frames (dpkt): what is
answered, and that each bad header is dropped under its own counter."""

from __future__ import annotations

import os
import struct

import dpkt
import pytest
from redleaf_lab.domains.netstack import arp as arp_module
from redleaf_lab.domains.netstack.inet import checksum, ones_sum
from redleaf_lab.domains.netstack.sockets import DGRAM

from .frames import CLIENT_IP, CLIENT_MAC, SERVER_IP, SERVER_MAC, Host, eth, ip_packet, udp


def slow_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@pytest.mark.parametrize("size", [0, 1, 2, 3, 20, 21, 1480, 1481])
def test_checksum_matches_the_rfc_1071_word_loop(size):
    for _seed in range(20):
        data = os.urandom(size)
        assert checksum(data) == slow_checksum(data)
    assert checksum(b"\xff\xff" * 4) == 0 and ones_sum(b"\xff\xff") == 0xFFFF
    assert checksum(b"\x00" * 6) == 0xFFFF


def test_checksum_verifies_dpkt_built_headers():
    frame = udp(1234, 7, b"hello")
    packet = dpkt.ethernet.Ethernet(frame).data
    assert checksum(bytes(packet)[:20]) == 0


def arp_frame(op: int, sender_ip: bytes, target_ip: bytes, sender_mac: bytes = CLIENT_MAC,
              dst: bytes = b"\xff" * 6) -> bytes:
    packet = dpkt.arp.ARP(op=op, sha=sender_mac, spa=sender_ip, tha=b"\0" * 6, tpa=target_ip)
    return eth(bytes(packet), 0x0806, dst=dst, src=sender_mac)


def test_arp_reply_cache_timeout_and_request_for_unknown_neighbour():
    host = Host()
    host.stack.arp.cache.clear()
    (reply,) = host.feed(arp_frame(1, CLIENT_IP, SERVER_IP))
    arp = reply.data
    assert reply.dst == CLIENT_MAC and arp.op == 2 and arp.sha == SERVER_MAC
    assert arp.spa == SERVER_IP and arp.tpa == CLIENT_IP
    assert host.stack.arp.resolve(CLIENT_IP, 0.0) == CLIENT_MAC  # learnt (RFC 826 merge)
    # a request for someone else teaches nothing about a new sender
    host.feed(arp_frame(1, bytes([10, 9, 0, 7]), bytes([10, 9, 0, 8]), sender_mac=b"\x02" * 6))
    assert bytes([10, 9, 0, 7]) not in host.stack.arp.cache
    host.advance(arp_module.CACHE_TIMEOUT + 1)
    assert host.stack.arp.resolve(CLIENT_IP, host.now) is None
    # a packet to an unknown neighbour waits for ARP: one request, then the packet
    fd = host.sockets.socket(DGRAM)
    host.sockets.sendto(fd, b"ping", int.from_bytes(CLIENT_IP, "big"), 9)
    (request,) = host.flush()
    assert request.dst == b"\xff" * 6 and request.data.op == 1 and request.data.tpa == CLIENT_IP
    out = host.feed(arp_frame(2, CLIENT_IP, SERVER_IP, dst=SERVER_MAC))
    assert len(out) == 1 and out[0].data.data.data == b"ping"
    # unanswered requests are repeated, then the held packets are dropped and counted
    host.sockets.sendto(fd, b"lost", int.from_bytes(bytes([10, 9, 0, 99]), "big"), 9)
    sent = host.flush()
    for _ in range(5):
        sent += host.advance(1.0)
    assert len(sent) == arp_module.REQUEST_TRIES and host.count("drop_arp_unresolved") == 1


def test_gratuitous_arp_at_start_and_conflicts_are_counted():
    host = Host()
    host.stack.start(0.0)
    (announce,) = host.flush()
    assert announce.dst == b"\xff" * 6 and announce.data.spa == announce.data.tpa == SERVER_IP
    host.feed(arp_frame(1, SERVER_IP, SERVER_IP, sender_mac=b"\x02\x00\x00\x00\x00\x09"))
    assert host.count("drop_arp_address_conflict") == 1
    host.feed(eth(b"\x00\x01\x08\x00\x06\x04\x00\x07" + bytes(20), 0x0806))
    host.feed(eth(b"\x00\x02\x08\x00\x06\x04\x00\x01" + bytes(20), 0x0806))
    host.feed(eth(b"\x00\x01", 0x0806))
    assert host.count("drop_arp_bad_op") == 1 and host.count("drop_arp_bad_header") == 1
    assert host.count("drop_arp_truncated") == 1


def icmp_echo(payload: bytes = b"abcdefgh") -> dpkt.icmp.ICMP:
    return dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=7, seq=3, data=payload))


def test_icmp_echo_reply_has_the_request_s_data_and_valid_checksums():
    host = Host()
    (reply,) = host.feed(eth(ip_packet(1, icmp_echo())))
    packet = reply.data
    assert packet.src == SERVER_IP and packet.dst == CLIENT_IP and packet.ttl == 64
    assert checksum(bytes(packet)[:20]) == 0 and checksum(bytes(packet.data)) == 0
    assert packet.data.type == 0 and packet.data.data.id == 7 and packet.data.data.data == b"abcdefgh"


def test_ipv4_bad_headers_are_counted_and_dropped():
    host = Host()
    good = bytearray(ip_packet(1, icmp_echo()))

    def variant(edit) -> bytes:
        packet = bytearray(good)
        edit(packet)
        return eth(bytes(packet))

    def fix_sum(packet: bytearray) -> None:
        packet[10:12] = b"\0\0"
        packet[10:12] = struct.pack("!H", checksum(bytes(packet[:20])))

    cases = {
        "ip_bad_checksum": lambda p: p.__setitem__(10, p[10] ^ 0xFF),
        "ip_bad_version": lambda p: (p.__setitem__(0, 0x65), fix_sum(p)),
        "ip_bad_header": lambda p: (p.__setitem__(0, 0x44), fix_sum(p)),
        "ip_bad_length": lambda p: (p.__setitem__(slice(2, 4), b"\x05\xdc"), fix_sum(p)),
        "ip_fragment": lambda p: (p.__setitem__(6, 0x20), fix_sum(p)),
        "ip_ttl_zero": lambda p: (p.__setitem__(8, 0), fix_sum(p)),
        "ip_not_ours": lambda p: (p.__setitem__(19, 77), fix_sum(p)),
        "ip_bad_source": lambda p: (p.__setitem__(12, 224), fix_sum(p)),
    }
    for reason, edit in cases.items():
        assert host.feed(variant(edit)) == [], reason
        assert host.count("drop_" + reason) == 1, reason
    options = dpkt.ip.IP(src=CLIENT_IP, dst=SERVER_IP, p=1, ttl=64, opts=b"\x01\x01\x01\x00",
                         data=icmp_echo())
    options.hl = 6
    assert host.feed(eth(bytes(options))) == [] and host.count("drop_ip_options") == 1
    assert host.feed(eth(b"\x45\x00")) == [] and host.count("drop_ip_truncated") == 1
    assert host.count("dropped") == len(cases) + 2
    assert len(host.feed(eth(bytes(good)))) == 1  # and the good one still gets its reply


def test_unknown_protocol_gets_protocol_unreachable():
    host = Host()
    (reply,) = host.feed(eth(ip_packet(99, b"12345678")))
    assert reply.data.data.type == 3 and reply.data.data.code == 2
    assert host.count("drop_ip_unknown_protocol") == 1


def test_ethernet_filters_other_hosts_types_and_runts():
    host = Host()
    frame = eth(ip_packet(1, icmp_echo()))
    assert host.feed(b"\x00" * 10) == []
    assert host.feed(b"\x02\x00\x00\x00\x00\x09" + frame[6:]) == []
    assert host.feed(frame[:12] + b"\x86\xdd" + frame[14:]) == []
    assert host.feed(frame[:6] + b"\x01" + frame[7:]) == []
    for reason in ("eth_runt", "eth_other_host", "eth_unknown_type", "eth_bad_source"):
        assert host.count("drop_" + reason) == 1


def test_udp_delivery_checksums_and_port_unreachable():
    host = Host()
    fd = host.sockets.socket(DGRAM)
    assert host.sockets.bind(fd, 7) == 0
    host.feed(udp(5555, 7, b"hi there"))
    assert host.sockets.recvfrom(fd, 100) == (8, int.from_bytes(CLIENT_IP, "big"), 5555, b"hi there")
    host.sockets.sendto(fd, b"back", int.from_bytes(CLIENT_IP, "big"), 5555)
    (out,) = host.flush()
    datagram = out.data.data
    assert datagram.sport == 7 and datagram.dport == 5555 and datagram.data == b"back"
    pseudo = CLIENT_IP + SERVER_IP  # the checksum verifies over the pseudo header
    assert checksum(bytes(datagram), ones_sum(SERVER_IP + pseudo[:4] + bytes((0, 17, 0, 12)))) == 0
    bad = bytearray(udp(5555, 7, b"corrupt"))
    bad[-1] ^= 0x55
    assert host.feed(bytes(bad)) == [] and host.count("drop_udp_bad_checksum") == 1
    zero = bytearray(udp(5555, 7, b"nosum!"))
    zero[40:42] = b"\0\0"  # checksum 0: none was computed (RFC 768)
    host.feed(bytes(zero))
    assert host.sockets.recvfrom(fd, 100)[3] == b"nosum!"
    (unreach,) = host.feed(udp(5555, 9, b"closed"))
    icmp = unreach.data.data
    assert icmp.type == 3 and icmp.code == 3 and host.count("drop_udp_no_port") == 1
    assert bytes(icmp.data)[4:24] == udp(5555, 9, b"closed")[14:34]  # quotes the header
    broadcast = udp(5555, 9, b"x", dst=bytes([10, 9, 0, 255]))
    assert host.feed(broadcast) == []  # never an ICMP error about a broadcast
    lying = bytearray(udp(5555, 7, b"abc"))
    lying[38:40] = b"\x00\x40"
    lying[40:42] = b"\0\0"
    assert host.feed(bytes(lying)) == [] and host.count("drop_udp_bad_length") == 1
