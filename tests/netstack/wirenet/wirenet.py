"""wirenet: a Net driver for tests whose wire is an in-process object (tests/netstack/wire.py).

Receive: frames queued on the wire are written into buffers lent in `packets` and
moved to `collect` (as many as both allow). Transmit: each frame's bytes go to the
wire, and its buffer straight back in `collect`. No buffer is held between calls.
"""

import struct

from redleaf_lab.interfaces.net import MAX_FRAME, MIN_FRAME

PAD = bytes(60)


class WireNet:
    def __init__(self, ctx, wire) -> None:
        self._wire = wire
        self._counts = [0, 0, 0, 0]

    def submit_and_poll(self, packets, collect, tx):
        wire = self._wire
        room = collect.capacity - len(collect)
        n = 0
        if tx:
            while n < room and len(packets):
                packet = packets.pop_front()
                raw = packet.tobytes()
                length = struct.unpack_from("<I", raw)[0]
                if MIN_FRAME <= length <= MAX_FRAME:
                    wire.transmit(raw[64:64 + length])
                    self._counts[1] += 1
                    self._counts[3] += length
                collect.push_back(packet)
                n += 1
            return (n, packets, collect)
        for frame in wire.receive(min(room, len(packets))):
            packet = packets.pop_front()
            frame = frame[:1984]
            packet.write(struct.pack("<I", len(frame)) + PAD + frame)
            collect.push_back(packet)
            self._counts[0] += 1
            self._counts[2] += len(frame)
            n += 1
        return (n, packets, collect)

    def stats(self):
        return (self._counts[0], self._counts[1], self._counts[2], self._counts[3], 0)

    def buffers_held(self):
        return (0, 0)

    def link_status(self):
        return (True, 10000)

    def promiscuous(self, on):
        return False

    def mac_address(self):
        return int.from_bytes(self._wire.mac[::-1], "big")


def init(ctx, wire) -> WireNet:
    return WireNet(ctx, wire)
