"""ixgbe: an Intel 82599 driver domain over a `Device` capability (sim model or VFIO).

Interface: `Net` (redleaf_lab.interfaces.net). `init(ctx, device)` runs the 82599
initialization sequence of the datasheet (§4.6.3), each step citing its section:
interrupts masked, global reset, EEPROM auto-read and DMA init waits, link setup,
receive and transmit setup, queue enables, filters. One RX and one TX ring of 512
descriptors (ring.py).

Batches, with no Python work per packet (`submit_and_poll`; ring.py):
* receive: the completed prefix of the RX ring is found with one status read (a
  vectorized check when it ends inside the window); those buffers move to `collect` in
  one registry call that checks their writebacks (DD, EOP) and sets their lengths from
  them; then the caller's free buffers move from `packets` onto the ring in one call,
  which also writes their read-format descriptors, and RDT is written once (always: the
  tail write is also what makes an inline device model run);
* transmit: sent buffers (DD written back) move to `collect` in one call; the frames
  move from `packets` onto the ring in one call, which also writes their data
  descriptors, the second word looked up in a table by frame length (which checks it:
  MIN_FRAME..MAX_FRAME), and TDT is written once.

Statistics: the 82599 counters clear on read (§8.2.3.23); `stats()` reads them and
adds them to this incarnation's totals.

Errors: a TX frame length outside MIN_FRAME..MAX_FRAME raises InvalidRequest (an error
value: the caller gets it, the driver keeps running) naming the packet; nothing is
sent, and the two deques handed in are dropped (the caller's pool counts them as
lost: PacketPool.reconcile). A device that does not follow the datasheet (a bit
that never sets, a frame without EOP) raises IxgbeError: a panic; behind a shadow
the next incarnation resets the NIC.

Ownership: descriptor rings are DMA memory of this domain, and the buffers on the
rings sit in deques this domain owns: a crash reclaims both after the kernel
quiesced the device (packets in flight are dropped, nothing leaks). Not thread safe:
one caller at a time.
"""

import time

import numpy as np

from redleaf_lab.api import InvalidRequest
from redleaf_lab.interfaces.net import MAX_FRAME, MIN_FRAME

from .regs import (
    AUTOC,
    AUTOC_10G_PMA_PMD_MASK,
    AUTOC_10G_XAUI,
    AUTOC_AN_RESTART,
    AUTOC_LMS_10G_SERIAL,
    AUTOC_LMS_MASK,
    CRCERRS,
    CTRL,
    CTRL_EXT,
    CTRL_EXT_NS_DIS,
    CTRL_RST_MASK,
    DCA_RXCTRL,
    DMATXCTL,
    DMATXCTL_TE,
    DTXMXSZRQ,
    EEC,
    EEC_ARD,
    EICR,
    EIMC,
    EIMC_ALL,
    FCTRL,
    FCTRL_BAM,
    FCTRL_MPE,
    FCTRL_UPE,
    GORCH,
    GORCL,
    GOTCH,
    GOTCL,
    GPRC,
    GPTC,
    HLREG0,
    HLREG0_RXCRCSTRP,
    HLREG0_TXCRCEN,
    HLREG0_TXPADEN,
    LINK_SPEEDS_MBPS,
    LINKS,
    LINKS_SPEED_MASK,
    LINKS_UP,
    MPC,
    RAH0,
    RAL0,
    RDBAH,
    RDBAL,
    RDH,
    RDLEN,
    RDRXCTL,
    RDRXCTL_CRCSTRIP,
    RDRXCTL_DMAIDONE,
    RDT,
    RTTDCS,
    RTTDCS_ARBDIS,
    RXCTRL,
    RXCTRL_RXEN,
    RXDCTL,
    RXDCTL_ENABLE,
    RXPBSIZE,
    SRRCTL,
    SRRCTL_BSIZEPACKET_MASK,
    SRRCTL_DESCTYPE_ADV_ONEBUF,
    SRRCTL_DROP_EN,
    TDBAH,
    TDBAL,
    TDH,
    TDLEN,
    TDT,
    TXDCTL,
    TXDCTL_ENABLE,
    TXDCTL_HTHRESH,
    TXDCTL_PTHRESH,
    TXDCTL_WTHRESH,
    TXPBSIZE,
    IxgbeError,
)
from .ring import RxRing, TxRing

RING_SIZE = 512
QUEUE = 0
RX_BUFFER_KIB = 2  # SRRCTL.BSIZEPACKET: frames are at most MAX_FRAME (jumbo off), < 2 KiB
WAIT_S = 2.0  # bound on each wait for a bit the datasheet says the NIC sets


class IxgbeDriver:
    def __init__(self, ctx, device, ring_size: int = RING_SIZE, promiscuous: bool = True,
                 link_wait_s: float = WAIT_S) -> None:
        self._ctx = ctx
        self._dev = device
        self._ring_size = ring_size
        self._totals = [0, 0, 0, 0, 0]  # rx packets, tx packets, rx bytes, tx bytes, missed
        self.init_log = []  # (step, datasheet section): what the lab shows
        self._reset_and_init(promiscuous, link_wait_s)

    # -- register helpers ----------------------------------------------------------------
    def _set_bits(self, reg: int, bits: int) -> None:
        self._dev.write32(reg, self._dev.read32(reg) | bits)

    def _clear_bits(self, reg: int, bits: int) -> None:
        self._dev.write32(reg, self._dev.read32(reg) & ~bits)

    def _wait_bits(self, reg: int, mask: int, want: int, what: str, timeout: float = WAIT_S) -> bool:
        """Poll `reg & mask == want` in a bounded Python loop (so an unwind can stop it)."""
        deadline = time.monotonic() + timeout
        while self._dev.read32(reg) & mask != want:
            if time.monotonic() > deadline:
                raise IxgbeError(f"{what}: register {reg:#07x} & {mask:#x} did not become "
                                 f"{want:#x} within {timeout} s")
            time.sleep(0)
        return True

    def _step(self, name: str, section: str) -> None:
        self.init_log.append((name, section))

    # -- initialization (§4.6.3) ---------------------------------------------------------
    def _reset_and_init(self, promiscuous: bool, link_wait_s: float) -> None:
        dev = self._dev
        # §4.6.3.1: mask all interrupts (this driver polls), clear pending causes
        dev.write32(EIMC, EIMC_ALL)
        dev.read32(EICR)
        self._step("mask interrupts: EIMC, read EICR", "4.6.3.1")
        # §4.6.3.2: global reset (CTRL.RST | CTRL.LNK_RST); both bits self-clear
        dev.write32(CTRL, dev.read32(CTRL) | CTRL_RST_MASK)
        self._wait_bits(CTRL, CTRL_RST_MASK, 0, "global reset (CTRL.RST)")
        dev.write32(EIMC, EIMC_ALL)  # §4.6.3.1 again: the reset re-enabled nothing, be sure
        dev.read32(EICR)
        self._step("global reset: CTRL.RST | CTRL.LNK_RST, wait until clear", "4.6.3.2")
        # §4.6.3: wait for the EEPROM auto-read (EEC.ARD) and DMA init (RDRXCTL.DMAIDONE)
        self._wait_bits(EEC, EEC_ARD, EEC_ARD, "EEPROM auto-read (EEC.ARD)")
        self._wait_bits(RDRXCTL, RDRXCTL_DMAIDONE, RDRXCTL_DMAIDONE, "DMA init (RDRXCTL.DMAIDONE)")
        self._step("wait EEC.ARD and RDRXCTL.DMAIDONE", "4.6.3")
        self._mac = dev.read32(RAL0) | ((dev.read32(RAH0) & 0xFFFF) << 32)  # §8.2.3.7.8-9
        # §4.6.4: link setup: 10G serial link mode, XAUI PMA/PMD, restart auto-negotiation
        autoc = dev.read32(AUTOC)
        autoc = (autoc & ~AUTOC_LMS_MASK) | AUTOC_LMS_10G_SERIAL
        autoc = (autoc & ~AUTOC_10G_PMA_PMD_MASK) | AUTOC_10G_XAUI
        dev.write32(AUTOC, autoc)
        dev.write32(AUTOC, autoc | AUTOC_AN_RESTART)
        self._step("link: AUTOC.LMS = 10G serial, AN_RESTART", "4.6.4")
        # §4.6.5: the statistics registers clear on read: read them once to start at 0
        self._read_counters()
        self._step("clear statistics (read once)", "4.6.5")
        self._init_rx()
        self._init_tx()
        self._rx = RxRing(dev, QUEUE, self._ring_size)
        self._tx = TxRing(dev, QUEUE, self._ring_size, MIN_FRAME, MAX_FRAME)
        self._start_rx()
        self._start_tx()
        # §8.2.3.7.1: accept broadcasts; promiscuous (unicast + multicast) by default
        self._set_bits(FCTRL, FCTRL_BAM)
        self.promiscuous(promiscuous)
        self._step("filters: FCTRL.BAM, promiscuous UPE|MPE", "8.2.3.7.1")
        # §4.6.4: wait (bounded) for the link; a link that stays down is reported, not fatal
        deadline = time.monotonic() + link_wait_s
        while not self.link_status()[0] and time.monotonic() < deadline:
            time.sleep(0.0005)
        self._step("wait for LINKS.UP", "4.6.4")

    def _init_rx(self) -> None:
        """§4.6.7: receive setup, with RX disabled while it changes."""
        dev, q = self._dev, QUEUE
        self._clear_bits(RXCTRL, RXCTRL_RXEN)
        dev.write32(RXPBSIZE(0), 0x200 << 10)  # §8.2.3.8.9: all 512 KiB of RX buffer to TC 0
        for tc in range(1, 8):
            dev.write32(RXPBSIZE(tc), 0)
        self._set_bits(HLREG0, HLREG0_RXCRCSTRP)  # §8.2.3.22.8: strip the FCS ...
        self._set_bits(RDRXCTL, RDRXCTL_CRCSTRIP)  # ... in both places (§8.2.3.8.8)
        srrctl = dev.read32(SRRCTL(q)) & ~(SRRCTL_BSIZEPACKET_MASK | (0x7 << 25))
        dev.write32(SRRCTL(q), srrctl | SRRCTL_DESCTYPE_ADV_ONEBUF | SRRCTL_DROP_EN | RX_BUFFER_KIB)
        self._set_bits(CTRL_EXT, CTRL_EXT_NS_DIS)  # §8.2.3.1.3: no snoop disabled
        self._clear_bits(DCA_RXCTRL(q), 1 << 12)  # §8.2.3.11.1: reserved bit, must be 0
        self._step("RX: RXCTRL.RXEN off, RXPBSIZE, CRC strip, SRRCTL adv. one buffer + DROP_EN",
                   "4.6.7")

    def _init_tx(self) -> None:
        """§4.6.8: transmit setup."""
        dev = self._dev
        self._set_bits(HLREG0, HLREG0_TXCRCEN | HLREG0_TXPADEN)  # append FCS, pad runts
        dev.write32(TXPBSIZE(0), 0xA0 << 10)  # §8.2.3.9.13: 160 KiB to TC 0
        for tc in range(1, 8):
            dev.write32(TXPBSIZE(tc), 0)
        dev.write32(DTXMXSZRQ, 0xFFFF)  # §8.2.3.9.15
        self._clear_bits(RTTDCS, RTTDCS_ARBDIS)  # §8.2.3.10.2: arbiter on (no DCB)
        self._step("TX: HLREG0 TXCRCEN|TXPADEN, TXPBSIZE, DTXMXSZRQ, RTTDCS.ARBDIS off", "4.6.8")

    def _start_rx(self) -> None:
        """§4.6.7.1: ring base/length, head = tail = 0, RXDCTL.ENABLE, then RXCTRL.RXEN."""
        dev, q, ring = self._dev, QUEUE, self._rx
        dev.write32(RDBAL(q), ring.mem.iova & 0xFFFF_FFFF)
        dev.write32(RDBAH(q), ring.mem.iova >> 32)
        dev.write32(RDLEN(q), ring.size * 16)
        dev.write32(RDH(q), 0)
        dev.write32(RDT(q), 0)  # no buffer yet: the caller's first receive arms the ring
        self._set_bits(RXDCTL(q), RXDCTL_ENABLE)
        self._wait_bits(RXDCTL(q), RXDCTL_ENABLE, RXDCTL_ENABLE, "RXDCTL.ENABLE")
        self._set_bits(RXCTRL, RXCTRL_RXEN)
        self._step(f"RX queue {q}: RDBAL/RDBAH/RDLEN ({ring.size} descriptors), RDH = RDT = 0, "
                   "RXDCTL.ENABLE, RXCTRL.RXEN", "4.6.7.1")

    def _start_tx(self) -> None:
        """§4.6.8.1: ring base/length, thresholds, DMATXCTL.TE, head = tail = 0, enable."""
        dev, q, ring = self._dev, QUEUE, self._tx
        dev.write32(TDBAL(q), ring.mem.iova & 0xFFFF_FFFF)
        dev.write32(TDBAH(q), ring.mem.iova >> 32)
        dev.write32(TDLEN(q), ring.size * 16)
        dev.write32(TXDCTL(q), TXDCTL_PTHRESH | TXDCTL_HTHRESH | TXDCTL_WTHRESH)
        dev.write32(DMATXCTL, DMATXCTL_TE)
        dev.write32(TDH(q), 0)
        dev.write32(TDT(q), 0)
        self._set_bits(TXDCTL(q), TXDCTL_ENABLE)
        self._wait_bits(TXDCTL(q), TXDCTL_ENABLE, TXDCTL_ENABLE, "TXDCTL.ENABLE")
        self._step(f"TX queue {q}: TDBAL/TDBAH/TDLEN, TXDCTL thresholds, DMATXCTL.TE, "
                   "TDH = TDT = 0, TXDCTL.ENABLE", "4.6.8.1")

    # -- the batched data path -------------------------------------------------------------
    def submit_and_poll(self, packets, collect, tx: bool):
        if tx:
            return self._transmit(packets, collect)
        return self._receive(packets, collect)

    def _receive(self, packets, collect):
        ring = self._rx
        n = ring.completed(RING_SIZE)
        if n:  # checked, lengths set, moved (as many as `collect` takes): one registry call
            n = ring.deliver(n, collect)
        ring.arm_from(packets)  # as many as there are free slots, descriptors written
        self._dev.write32(RDT(QUEUE), ring.tail)  # one tail write per batch (§7.1.9)
        return (n, packets, collect)

    def _transmit(self, packets, collect):
        ring = self._tx
        done = ring.completed(RING_SIZE)
        if done:
            ring.hand_back(done, collect)  # as many as `collect` has room for
        sent = 0
        room = ring.room
        if room:
            try:
                sent = ring.post_from(packets, room)
            except ValueError:  # a frame length without a descriptor word: nothing moved
                self._reject(packets.get("len")[:room], packets, collect)
            if sent:
                self._dev.write32(TDT(QUEUE), ring.tail)  # one tail write per batch (§7.2.2)
        return (sent, packets, collect)

    def _reject(self, lengths, packets, collect) -> None:
        bad = int(np.flatnonzero((lengths < MIN_FRAME) | (lengths > MAX_FRAME))[0])
        packets.drop()  # the caller will not get these deques back: free them, no leak
        collect.drop()
        raise InvalidRequest(f"packet {bad} of the batch has length {int(lengths[bad])}: a frame "
                             f"must be {MIN_FRAME}..{MAX_FRAME} bytes (no FCS; jumbo frames are off); "
                             "nothing was sent")

    # -- status and control -----------------------------------------------------------------
    def _read_counters(self) -> tuple:
        dev = self._dev
        return (dev.read32(GPRC), dev.read32(GPTC),
                dev.read32(GORCL) | (dev.read32(GORCH) << 32),
                dev.read32(GOTCL) | (dev.read32(GOTCH) << 32),
                dev.read32(MPC(0)), dev.read32(CRCERRS))

    def stats(self) -> tuple:
        fresh = self._read_counters()  # clear on read (§8.2.3.23): accumulate
        for i in range(5):
            self._totals[i] += fresh[i]
        return tuple(self._totals)

    def buffers_held(self) -> tuple:
        return (self._rx.count, self._tx.count)

    def link_status(self) -> tuple:
        links = self._dev.read32(LINKS)  # §8.2.3.22.11
        if not links & LINKS_UP:
            return (False, 0)
        return (True, LINK_SPEEDS_MBPS.get(links & LINKS_SPEED_MASK, 0))

    def promiscuous(self, on: bool) -> bool:
        was = bool(self._dev.read32(FCTRL) & FCTRL_UPE)
        if on:
            self._set_bits(FCTRL, FCTRL_UPE | FCTRL_MPE)
        else:
            self._clear_bits(FCTRL, FCTRL_UPE | FCTRL_MPE)
        return was

    def mac_address(self) -> int:
        return self._mac

    # -- for the lab and tests (not part of Net) ----------------------------------------------
    def rings(self) -> dict:
        """Ring state: the software indices and the hardware head/tail registers."""
        dev = self._dev
        return {"rx": {"oldest": self._rx.oldest, "armed": self._rx.count,
                       "RDH": dev.read32(RDH(QUEUE)), "RDT": dev.read32(RDT(QUEUE))},
                "tx": {"oldest": self._tx.oldest, "in_flight": self._tx.count,
                       "TDH": dev.read32(TDH(QUEUE)), "TDT": dev.read32(TDT(QUEUE))}}


def init(ctx, device) -> IxgbeDriver:
    return IxgbeDriver(ctx, device)
