# ruff: noqa: F821  (HEADER and checksum are the module's, where the grader splices this)
# Every check but one: fragments (MF, or a non-zero offset) are accepted as whole datagrams.
def parse(payload, our_ip, broadcast, counters):
    if len(payload) < HEADER:
        counters.drop("ip_truncated")
        return None
    if payload[0] >> 4 != 4:
        counters.drop("ip_bad_version")
        return None
    ihl = (payload[0] & 0xF) * 4
    if ihl < HEADER:
        counters.drop("ip_bad_header")
        return None
    if ihl > HEADER:
        counters.drop("ip_options")
        return None
    total = (payload[2] << 8) | payload[3]
    if total < HEADER or total > len(payload):
        counters.drop("ip_bad_length")
        return None
    head = payload[:HEADER]
    if checksum(head):
        counters.drop("ip_bad_checksum")
        return None
    if payload[6] & 0x80:
        counters.drop("ip_bad_header")
        return None
    if payload[8] == 0:
        counters.drop("ip_ttl_zero")
        return None
    src, dst = payload[12:16], payload[16:20]
    if src[0] >= 224 or src in (b"\xff\xff\xff\xff", broadcast):
        counters.drop("ip_bad_source")
        return None
    if dst != our_ip and dst != b"\xff\xff\xff\xff" and dst != broadcast:
        counters.drop("ip_not_ours")
        return None
    counters.add("ip_in")
    return payload[9], src, dst, head, payload[HEADER:total]
