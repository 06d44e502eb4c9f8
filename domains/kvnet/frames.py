"""Frame handling of kvnet: ARP replies (RFC 826) and UDP replies (RFC 768 over IPv4,
RFC 791) built from the request frame, for the server's MAC, address and port.

`reply_frame(frame, mac, ip, port, serve)` returns the reply frame, or None when the
frame is not for this server (`ignored`) or is a damaged UDP datagram (checksum or
lengths: `bad`), as the second element: (reply | None, why). `serve(datagram)` is the
memcached layer (protocol.handle); its None means "no reply". Pure functions.
"""

import struct

from .inet import arp_reply, checksum

ETH_ARP, ETH_IPV4 = b"\x08\x06", b"\x08\x00"


def reply_frame(frame: bytes, mac: bytes, ip: bytes, port: int, serve):
    if len(frame) < 14:
        return None, "ignored"
    if frame[12:14] == ETH_ARP:
        reply = arp_reply(frame, mac, ip)
        return reply, "arp" if reply is not None else "ignored"
    if frame[12:14] != ETH_IPV4 or len(frame) < 34 or frame[14] >> 4 != 4:
        return None, "ignored"
    ihl = (frame[14] & 0xF) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    if frame[23] != 17 or frame[30:34] != ip:
        return None, "ignored"
    if ihl < 20 or total < ihl + 8 or 14 + total > len(frame) or checksum(frame[14:14 + ihl]):
        return None, "bad"
    if struct.unpack("!H", frame[20:22])[0] & 0x3FFF:  # MF or a fragment offset
        return None, "bad"
    udp = frame[14 + ihl:14 + total]
    src_port, dst_port, length, udp_checksum = struct.unpack("!HHHH", udp[:8])
    if dst_port != port:
        return None, "ignored"
    if length < 8 or length > len(udp):
        return None, "bad"
    udp = udp[:length]
    src_ip = frame[26:30]
    if udp_checksum and checksum(src_ip + ip + struct.pack("!BBH", 0, 17, length) + udp):
        return None, "bad"
    answer = serve(udp[8:])
    if answer is None:
        return None, "served"
    out_udp = struct.pack("!HHHH", port, src_port, 8 + len(answer), 0) + answer
    pseudo = ip + src_ip + struct.pack("!BBH", 0, 17, len(out_udp))
    udp_sum = checksum(pseudo + out_udp) or 0xFFFF  # RFC 768: 0 means "none"
    out_udp = out_udp[:6] + struct.pack("!H", udp_sum) + out_udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(out_udp), 0, 0x4000, 64, 17, 0,
                         ip, src_ip)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return frame[6:12] + mac + ETH_IPV4 + header + out_udp, "served"
