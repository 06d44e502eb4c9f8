"""Frame handling of kvnet: ARP replies (RFC 826) and UDP replies (RFC 768 over IPv4,
RFC 791) built from the request frame, for the server's MAC, address and port.

`reply_frame(frame, mac, ip, port, serve)` returns the reply frame, or None when the
frame is not for this server (`ignored`) or is a damaged UDP datagram (checksum or
lengths: `bad`), as the second element: (reply | None, why). `serve(datagram)` is the
memcached layer (protocol.handle); its None means "no reply". Pure functions.
"""

import struct

ETH_ARP, ETH_IPV4 = b"\x08\x06", b"\x08\x00"


def inet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): the complement of the ones'-complement sum of the
    16-bit words. That sum is the data, read as one big-endian number, modulo 0xFFFF
    (2**16 = 1 mod 0xFFFF: RFC 1071 §2(B), byte-order and end-around-carry arithmetic),
    except that a multiple of 0xFFFF sums to 0xFFFF unless every byte is 0. One C-level
    operation instead of a loop over words."""
    if len(data) % 2:
        data += b"\x00"
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and data.strip(b"\x00"):
        total = 0xFFFF
    return ~total & 0xFFFF


def arp_reply(frame: bytes, mac: bytes, ip: bytes):
    """RFC 826: the reply to a request for `ip` (Ethernet/IPv4 only), else None."""
    if len(frame) < 42:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, 1) or frame[38:42] != ip:
        return None
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + ip + sender_mac + sender_ip
    return sender_mac + mac + ETH_ARP + arp


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
    if ihl < 20 or total < ihl + 8 or 14 + total > len(frame) or inet_checksum(frame[14:14 + ihl]):
        return None, "bad"
    if struct.unpack("!H", frame[20:22])[0] & 0x3FFF:  # MF or a fragment offset
        return None, "bad"
    udp = frame[14 + ihl:14 + total]
    src_port, dst_port, length, checksum = struct.unpack("!HHHH", udp[:8])
    if dst_port != port:
        return None, "ignored"
    if length < 8 or length > len(udp):
        return None, "bad"
    udp = udp[:length]
    src_ip = frame[26:30]
    if checksum and inet_checksum(src_ip + ip + struct.pack("!BBH", 0, 17, length) + udp):
        return None, "bad"
    answer = serve(udp[8:])
    if answer is None:
        return None, "served"
    out_udp = struct.pack("!HHHH", port, src_port, 8 + len(answer), 0) + answer
    pseudo = ip + src_ip + struct.pack("!BBH", 0, 17, len(out_udp))
    udp_sum = inet_checksum(pseudo + out_udp) or 0xFFFF  # RFC 768: 0 means "none"
    out_udp = out_udp[:6] + struct.pack("!H", udp_sum) + out_udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(out_udp), 0, 0x4000, 64, 17, 0,
                         ip, src_ip)
    header = header[:10] + struct.pack("!H", inet_checksum(header)) + header[12:]
    return frame[6:12] + mac + ETH_IPV4 + header + out_udp, "served"
