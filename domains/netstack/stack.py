"""The Stack: Ethernet, ARP, IPv4, ICMP, UDP and TCP wired together, with no I/O.

Interface (sans-I/O: frames in, frames out, time passed in):
* `Stack(mac, ip, prefix, gateway, options, seed)`; `start(now)` queues a gratuitous ARP;
* `input(frame, now)`: one received Ethernet frame (bytes, no FCS);
* `tick(now)`: ARP and TCP timers; `flush_acks()`: delayed ACKs;
* `drain()`: the frames to transmit, in order (the caller batches them into Packets);
* `send_ip(dst, protocol, body)`: IP output with routing (on-link, else the gateway)
  and ARP resolution (held packets leave when the reply arrives);
* `udp_bind/udp_unbind/udp_send` and the `tcp` layer, used by the socket layer;
* `counters`: every event and drop reason (counters.py).

Demultiplexing follows RFC 1122: ARP to arp.py; IPv4 validated by ipv4.py then ICMP,
UDP or TCP; an unknown protocol gets ICMP protocol-unreachable, UDP to a closed port
port-unreachable (never in answer to a broadcast, RFC 1122 3.2.2). Ownership: a Stack
is one domain's private state; the domain (netstack.py) serializes all calls.
"""

from collections import deque

from . import ethernet, icmp, ipv4, udp
from .arp import Arp
from .counters import Counters
from .ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from .tcp import Tcp, TcpOptions

UDP_QUEUE = 256  # datagrams a UDP socket holds before new ones are dropped
ETH_IPV4 = b"\x08\x00"


class UdpEndpoint:
    def __init__(self, port: int) -> None:
        self.port = port
        self.queue = deque()


class Stack:
    def __init__(self, mac: bytes, ip: bytes, prefix: int = 24, gateway=None,
                 options=None, seed=None) -> None:
        if len(mac) != 6 or len(ip) != 4 or not 0 < prefix < 32:
            raise ValueError("a stack needs a 6-byte MAC, a 4-byte IPv4 address and a prefix 1..31")
        self.mac = bytes(mac)
        self.ip = bytes(ip)
        mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
        self.mask = mask
        self.network = int.from_bytes(self.ip, "big") & mask
        self.broadcast = (self.network | (~mask & 0xFFFFFFFF)).to_bytes(4, "big")
        self.gateway = bytes(gateway) if gateway else None
        self.counters = Counters()
        self.arp = Arp(self.mac, self.ip, self.counters)
        self.tcp = Tcp(self.ip, self.send_ip, self.counters, options or TcpOptions(), seed)
        self.udp = {}
        self.out = []
        self.ident = 0
        self.now = 0.0

    def start(self, now: float) -> None:
        self.now = now
        self.counters.add("arp_gratuitous")
        self.out.append(self.arp.gratuitous())

    def drain(self) -> list:
        frames, self.out = self.out, []
        return frames

    # -- input --------------------------------------------------------------------------
    def input(self, frame: bytes, now: float) -> None:
        self.now = now
        self.counters.add("frames_in")
        parsed = ethernet.parse(frame, self.mac, self.counters)
        if parsed is None:
            return
        ethertype, _src_mac, payload = parsed
        if ethertype == ethernet.TYPE_ARP:
            reply = self.arp.input(payload, now)
            if reply is not None:
                self.out.append(reply)
            self._arp_output()
            return
        datagram = ipv4.parse(payload, self.ip, self.broadcast, self.counters)
        if datagram is None:
            return
        protocol, src, dst, head, body = datagram
        if protocol == PROTO_TCP:
            self.tcp.input(src, dst, body, now)
        elif protocol == PROTO_UDP:
            self._udp_input(src, dst, head, body)
        elif protocol == PROTO_ICMP:
            reply = icmp.input(body, self.counters)
            if reply is not None and dst == self.ip:
                self.send_ip(src, PROTO_ICMP, reply)
        else:
            self.counters.drop("ip_unknown_protocol")
            if dst == self.ip:
                self._unreachable(src, icmp.PROTOCOL_UNREACHABLE, head, body)

    def _unreachable(self, src: bytes, code: int, head: bytes, body: bytes) -> None:
        self.counters.add("icmp_unreachable_sent")
        self.send_ip(src, PROTO_ICMP, icmp.unreachable(code, head, body))

    def _udp_input(self, src: bytes, dst: bytes, head: bytes, body: bytes) -> None:
        parsed = udp.parse(src, dst, body, self.counters)
        if parsed is None:
            return
        sport, dport, data = parsed
        endpoint = self.udp.get(dport)
        if endpoint is None:
            self.counters.drop("udp_no_port")
            if dst == self.ip:
                self._unreachable(src, icmp.PORT_UNREACHABLE, head, body)
            return
        if len(endpoint.queue) >= UDP_QUEUE:
            self.counters.drop("udp_queue_full")
            return
        endpoint.queue.append((src, sport, data))

    # -- output -------------------------------------------------------------------------
    def send_ip(self, dst: bytes, protocol: int, body: bytes) -> None:
        packet = ipv4.build(self.ip, dst, protocol, body, self.ident)
        self.ident = (self.ident + 1) & 0xFFFF
        if dst == self.broadcast or dst == ipv4.LIMITED_BROADCAST:
            self.out.append(ethernet.BROADCAST + self.mac + ETH_IPV4 + packet)
            return
        hop = dst
        if int.from_bytes(dst, "big") & self.mask != self.network:
            if self.gateway is None:
                self.counters.drop("ip_no_route")
                return
            hop = self.gateway
        mac = self.arp.resolve(hop, self.now)
        if mac is None:
            self.arp.hold(hop, packet, self.now)
            self._arp_output()
            return
        self.out.append(mac + self.mac + ETH_IPV4 + packet)

    def _arp_output(self) -> None:
        arp = self.arp
        if arp.out:
            self.out.extend(arp.out)
            arp.out = []
        if arp.released:
            for mac, packet in arp.released:
                self.out.append(mac + self.mac + ETH_IPV4 + packet)
            arp.released = []

    # -- UDP endpoints (the socket layer's) ---------------------------------------------
    def udp_bind(self, port: int):
        if port in self.udp:
            return None
        endpoint = self.udp[port] = UdpEndpoint(port)
        return endpoint

    def udp_unbind(self, endpoint) -> None:
        if self.udp.get(endpoint.port) is endpoint:
            del self.udp[endpoint.port]

    def udp_send(self, sport: int, dst: bytes, dport: int, data: bytes) -> None:
        self.counters.add("udp_out")
        self.send_ip(dst, PROTO_UDP, udp.build(self.ip, dst, sport, dport, data))

    # -- timers -------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        self.now = now
        self.arp.tick(now)
        self._arp_output()
        self.tcp.tick(now)

    def flush_acks(self) -> None:
        self.tcp.flush_acks()
