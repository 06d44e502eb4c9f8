"""ARP (RFC 826) for IPv4 over Ethernet: the neighbour cache, replies, requests for
unknown neighbours, and gratuitous ARP (RFC 5227 section 3) at start.

Interface (`Arp`, owned by the Stack):
* `input(payload, now)`: handle one ARP packet; returns a frame to send (a reply) or None.
* `resolve(ip, now)`: the neighbour's MAC, or None; then the caller queues its IP
  packet with `hold(ip, packet, now)`, which sends a request (at most one per
  REQUEST_INTERVAL per neighbour) and keeps up to HOLD_PACKETS packets per neighbour.
* `tick(now)`: re-sends requests for unresolved neighbours, gives up after
  REQUEST_TRIES (their held packets are counted as dropped: `arp_unresolved`) and
  expires cache entries after CACHE_TIMEOUT seconds.
* `gratuitous()`: the announcement frame (a request for our own address).

Frames to send come back to the caller (`self.out`), which adds them to its TX batch;
a packet released by a reply comes back through `released` as (dst MAC, IP packet).
RFC 826's "merge" rule: a packet from a sender already in the cache refreshes its
entry; a packet aimed at us adds the sender. No state is shared; no lock.
"""

import struct

from .ethernet import BROADCAST, TYPE_ARP, header

CACHE_TIMEOUT = 60.0
REQUEST_INTERVAL = 1.0
REQUEST_TRIES = 3
HOLD_PACKETS = 8
CACHE_LIMIT = 1024
ZERO_IP = b"\x00\x00\x00\x00"
FIXED = struct.pack("!HHBB", 1, 0x0800, 6, 4)  # hardware Ethernet, protocol IPv4, 6, 4


class Arp:
    def __init__(self, mac: bytes, ip: bytes, counters) -> None:
        self.mac = mac
        self.ip = ip
        self.counters = counters
        self.cache = {}  # ip -> (mac, expires)
        self.pending = {}  # ip -> [packets, next request time, tries]
        self.out = []  # frames to transmit
        self.released = []  # (dst mac, ip packet) now sendable

    def packet(self, op: int, target_mac: bytes, target_ip: bytes, sender_ip: bytes) -> bytes:
        return FIXED + struct.pack("!H", op) + self.mac + sender_ip + target_mac + target_ip

    def gratuitous(self) -> bytes:
        body = self.packet(1, b"\x00" * 6, self.ip, self.ip)
        return header(BROADCAST, self.mac, TYPE_ARP) + body

    def input(self, payload: bytes, now: float):
        if len(payload) < 28:
            self.counters.drop("arp_truncated")
            return None
        if payload[0:6] != FIXED:
            self.counters.drop("arp_bad_header")
            return None
        op = (payload[6] << 8) | payload[7]
        sender_mac, sender_ip = payload[8:14], payload[14:18]
        target_ip = payload[24:28]
        if op != 1 and op != 2:
            self.counters.drop("arp_bad_op")
            return None
        if sender_mac[0] & 1 or sender_ip == ZERO_IP or sender_ip[0] >= 224:
            self.counters.drop("arp_bad_sender")  # probes and bogus senders teach nothing
            return None
        if sender_ip == self.ip:
            self.counters.drop("arp_address_conflict")  # someone else claims our address
            return None
        self.counters.add("arp_in")
        if sender_ip in self.cache or target_ip == self.ip:
            self._learn(sender_ip, sender_mac, now)
        if op == 1 and target_ip == self.ip:
            self.counters.add("arp_replies")
            return header(sender_mac, self.mac, TYPE_ARP) + self.packet(2, sender_mac, sender_ip, self.ip)
        return None

    def _learn(self, ip: bytes, mac: bytes, now: float) -> None:
        if ip not in self.cache and len(self.cache) >= CACHE_LIMIT:
            self.counters.add("arp_cache_full")
            return
        self.cache[ip] = (mac, now + CACHE_TIMEOUT)
        waiting = self.pending.pop(ip, None)
        if waiting is not None:
            for packet in waiting[0]:
                self.released.append((mac, packet))

    def resolve(self, ip: bytes, now: float):
        entry = self.cache.get(ip)
        if entry is None or entry[1] < now:
            return None
        return entry[0]

    def hold(self, ip: bytes, packet: bytes, now: float) -> None:
        waiting = self.pending.get(ip)
        if waiting is None:
            if len(self.pending) >= CACHE_LIMIT:
                self.counters.drop("arp_pending_full")
                return
            waiting = self.pending[ip] = [[], now, 0]
        if len(waiting[0]) >= HOLD_PACKETS:
            self.counters.drop("arp_hold_full")
        else:
            waiting[0].append(packet)
        if waiting[1] <= now:
            self._request(ip, waiting, now)

    def _request(self, ip: bytes, waiting: list, now: float) -> None:
        waiting[1] = now + REQUEST_INTERVAL
        waiting[2] += 1
        self.counters.add("arp_requests")
        self.out.append(header(BROADCAST, self.mac, TYPE_ARP) + self.packet(1, b"\x00" * 6, ip, self.ip))

    def tick(self, now: float) -> None:
        for ip in [ip for ip, entry in self.cache.items() if entry[1] < now]:
            del self.cache[ip]
            self.counters.add("arp_expired")
        for ip, waiting in list(self.pending.items()):
            if waiting[1] > now:
                continue
            if waiting[2] >= REQUEST_TRIES:
                for _ in waiting[0]:
                    self.counters.drop("arp_unresolved")
                del self.pending[ip]
            else:
                self._request(ip, waiting, now)
