"""A minimal 82599 host written against raw registers, for the model's datasheet tests.

It runs the §4.6.3 init sequence through `Device.write32` (inline mode processes on
each write), keeps one RX and one TX ring of advanced (or legacy) descriptors in DMA
memory, and moves frames as bytes. No driver code is reused, so the tests exercise the
model alone. Also: frame parsing and Internet checksums for checking generator frames.
"""

from __future__ import annotations

import struct
import time

import numpy as np

from redleaf_lab.devices import ixgbe_regs as r
from redleaf_lab.devices.sim_ixgbe import SimIxgbe

BUF = 2048


def wait(dev: SimIxgbe, reg: int, mask: int, want: int, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while dev.read32(reg) & mask != want:
        if not dev.threaded:
            dev.process()
        if time.monotonic() > deadline:
            raise TimeoutError(f"register {reg:#x} & {mask:#x} never became {want:#x}")


def reset(dev: SimIxgbe) -> None:
    """§4.6.3.1-2: mask interrupts, global reset, wait for EEPROM and DMA init."""
    dev.write32(r.EIMC, r.EIMC_ALL)
    dev.write32(r.CTRL, dev.read32(r.CTRL) | r.CTRL_RST_MASK)
    wait(dev, r.CTRL, r.CTRL_RST_MASK, 0)
    dev.write32(r.EIMC, r.EIMC_ALL)
    wait(dev, r.EEC, r.EEC_ARD, r.EEC_ARD)
    wait(dev, r.RDRXCTL, r.RDRXCTL_DMAIDONE, r.RDRXCTL_DMAIDONE)


def link_up(dev: SimIxgbe) -> None:
    """§4.6.4: 10G serial, restart autonegotiation, wait for LINKS.UP."""
    autoc = (dev.read32(r.AUTOC) & ~r.AUTOC_LMS_MASK) | r.AUTOC_LMS_10G_SERIAL
    dev.write32(r.AUTOC, (autoc & ~r.AUTOC_10G_PMA_PMD_MASK) | r.AUTOC_AN_RESTART)
    wait(dev, r.LINKS, r.LINKS_UP, r.LINKS_UP)


class Nic:
    """Queue `q` of a SimIxgbe: an RX and a TX ring of `ring` descriptors each."""

    def __init__(self, dev: SimIxgbe, ring: int = 16, q: int = 0, legacy: bool = False,
                 bsize_kib: int = 2, promisc: bool = True, start: bool = True,
                 init: bool = True) -> None:
        self.dev, self.ring, self.q, self.legacy = dev, ring, q, legacy
        self.bufsize = bsize_kib * 1024
        self.rx_mem = dev.dma_alloc(ring * 16)
        self.tx_mem = dev.dma_alloc(ring * 16)
        self.rx_bufs = dev.dma_alloc(ring * BUF)
        self.tx_bufs = dev.dma_alloc(ring * BUF)
        self.rxd = self.rx_mem.array.view(np.uint64).reshape(ring, 2)
        self.txd = self.tx_mem.array.view(np.uint64).reshape(ring, 2)
        self.rx_next = 0  # next RX descriptor to check for DD
        self.tx_next = 0  # next TX descriptor to fill
        if init:
            reset(dev)
            link_up(dev)
            self.setup_global(promisc)
        self.setup_queue()
        if start:
            self.start()

    def setup_global(self, promisc: bool) -> None:
        dev = self.dev
        dev.write32(r.RXCTRL, 0)  # §4.6.7: RX off while configuring
        dev.write32(r.HLREG0, dev.read32(r.HLREG0) | r.HLREG0_RXCRCSTRP | r.HLREG0_TXCRCEN
                    | r.HLREG0_TXPADEN)
        dev.write32(r.RDRXCTL, dev.read32(r.RDRXCTL) | r.RDRXCTL_CRCSTRIP)
        fctrl = r.FCTRL_BAM | ((r.FCTRL_MPE | r.FCTRL_UPE) if promisc else 0)
        dev.write32(r.FCTRL, fctrl)
        dev.write32(r.DMATXCTL, r.DMATXCTL_TE)
        dev.write32(r.RXCTRL, r.RXCTRL_RXEN)

    def setup_queue(self) -> None:
        dev, q = self.dev, self.q
        desctype = r.SRRCTL_DESCTYPE_LEGACY if self.legacy else r.SRRCTL_DESCTYPE_ADV_ONEBUF
        dev.write32(r.SRRCTL(q), desctype | r.SRRCTL_DROP_EN | self.bufsize // 1024)
        for base, iova in ((r.RDBAL(q), self.rx_mem.iova), (r.TDBAL(q), self.tx_mem.iova)):
            dev.write32(base, iova & 0xFFFFFFFF)
            dev.write32(base + 4, iova >> 32)
            dev.write32(base + 8, self.ring * 16)
        for i in range(self.ring):
            self.arm(i)

    def start(self) -> None:
        dev, q = self.dev, self.q
        dev.write32(r.RXDCTL(q), r.RXDCTL_ENABLE)
        wait(dev, r.RXDCTL(q), r.RXDCTL_ENABLE, r.RXDCTL_ENABLE)
        dev.write32(r.RDH(q), 0)
        dev.write32(r.TXDCTL(q), r.TXDCTL_ENABLE)
        wait(dev, r.TXDCTL(q), r.TXDCTL_ENABLE, r.TXDCTL_ENABLE)

    def arm(self, i: int) -> None:
        """RX read format: packet buffer address, header address 0 (clears DD)."""
        self.rxd[i, 0] = self.rx_bufs.iova + i * BUF
        self.rxd[i, 1] = 0

    def give_all(self) -> None:
        """RDT = ring - 1: every descriptor but one belongs to the device."""
        self.dev.write32(r.RDT(self.q), self.ring - 1)

    def status(self, i: int) -> tuple[int, int]:
        """(status, length) of RX descriptor i, in the configured write-back format."""
        hi = int(self.rxd[i, 1])
        if self.legacy:
            return (hi >> 32) & 0xFF, hi & 0xFFFF
        return hi & 0xFFFFFFFF, (hi >> 32) & 0xFFFF

    def rx(self, limit: int = 1 << 30) -> list[bytes]:
        """Collect frames with DD (EOP required), re-arm, RDT = last processed."""
        frames: list[bytes] = []
        last = None
        while len(frames) < limit:
            st, length = self.status(self.rx_next)
            if not st & r.RXD_STAT_DD:
                break
            assert st & r.RXD_STAT_EOP, "multi-descriptor frame in Nic.rx"
            off = self.rx_next * BUF
            frames.append(bytes(self.rx_bufs.array[off:off + length]))
            self.arm(self.rx_next)
            last = self.rx_next
            self.rx_next = (self.rx_next + 1) % self.ring
        if last is not None:
            self.dev.write32(r.RDT(self.q), last)
        return frames

    def tx(self, frames: list[bytes], rs: bool = True, addr: int | None = None) -> None:
        """Queue frames (one descriptor each) and write TDT once."""
        for frame in frames:
            i = self.tx_next
            while (i + 1) % self.ring == self.dev.read32(r.TDH(self.q)):  # ring full
                self.dev.write32(r.TDT(self.q), self.tx_next)
                time.sleep(0)
            off = i * BUF
            self.tx_bufs.array[off:off + len(frame)] = np.frombuffer(frame, np.uint8)
            cmd = (len(frame) | r.TXD_DTYP_DATA | r.TXD_CMD_DEXT | r.TXD_CMD_EOP
                   | r.TXD_CMD_IFCS | (r.TXD_CMD_RS if rs else 0))
            self.txd[i, 0] = self.tx_bufs.iova + off if addr is None else addr
            self.txd[i, 1] = cmd | (len(frame) << r.TXD_PAYLEN_SHIFT) << 32
            self.tx_next = (i + 1) % self.ring
        self.dev.write32(r.TDT(self.q), self.tx_next)

    def tx_dd(self, i: int) -> bool:
        return bool((int(self.txd[i, 1]) >> 32) & r.TXD_STAT_DD)


# -- frames ---------------------------------------------------------------------------
def inet_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def parse_udp(frame: bytes) -> dict[str, int]:
    """Check an Ethernet/IPv4/UDP frame's checksums; return its fields."""
    assert frame[12:14] == b"\x08\x00", "not IPv4"
    ip = frame[14:34]
    assert ip[0] == 0x45 and ip[9] == 17
    assert inet_sum(ip) == 0xFFFF, "bad IPv4 header checksum"
    total = struct.unpack("!H", ip[2:4])[0]
    assert total == len(frame) - 14
    udp = frame[34:14 + total]
    ulen = struct.unpack("!H", udp[4:6])[0]
    assert ulen == len(udp)
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, ulen)
    assert inet_sum(pseudo + udp) == 0xFFFF, "bad UDP checksum"
    return {"src": struct.unpack("!I", ip[12:16])[0], "dst": struct.unpack("!I", ip[16:20])[0],
            "sport": struct.unpack("!H", udp[0:2])[0], "dport": struct.unpack("!H", udp[2:4])[0],
            "seq": struct.unpack("!Q", udp[8:16])[0], "flow": struct.unpack("!I", udp[16:20])[0]}
