"""SimIxgbe: the `sim` backend of an Intel 82599 NIC (the C model behind a Device).

Purpose: creates an 82599 model (csrc/ixgbe_model.c, module `_redleaf_dev`, which
releases the GIL) that DMAs into the kernel's shared-heap arena, and exposes it as a
`Device`: the BAR is the model's 128 KiB register memory (an `ffi.buffer`, offsets in
`ixgbe_regs`), DMA memory comes from the heap. The wire is chosen here:

* "generator": RX carries IPv4/UDP frames of `packet_size` bytes on the wire (64..1518,
  counting the 4-byte FCS that the NIC strips, so a driver sees 60..1514 bytes) over
  `flows` flows (1..MAX_FLOWS = 4,194,304; flow f comes from
  10.(1 + (f >> 16)).((f >> 8) & 255).(f & 255), port 10000 + f % 50000; above 65,536
  flows no per-flow template is kept: the flow-count mode of Maglev's 1M-flow workload), picked from `seed`; `rate_pps` (thread mode) limits it, None means as
  fast as the RX ring has room. TX goes to a checking sink (`loopback=True` also
  delivers it back into RX).
* "sink": nothing arrives; TX is counted and checked (and looped back if asked).
* "loopback": TX is delivered back into RX.
* "tap": a Linux TAP interface (`tap_name`; needs root and /dev/net/tun). The device
  thread polls it; in inline mode frames are read only during a pass, so call
  `process()` while waiting for traffic.
* "none": nothing arrives, TX is dropped.

Modes: inline (`threaded=False`, deterministic): every `write32/write64` runs one model
pass before it returns: register effects (reset, link, queue enables), all pending TX,
and the wire filling free RX descriptors (at most `burst` per queue; `rate_pps` is not
used). That pass keeps the GIL (devices/keepgil.py): it is short, and a GIL release on
every tail write would let each other busy thread run first. Threaded: a C device
thread polls registers and the wire without the GIL.

Statistics registers clear on read: read them with `read32` (not through `regs32()`),
low dword before high (GORCL then GORCH). Model-side counters: `stats()`.
Test and lab hooks: `process()`, `generate(n)`, `set_replay(frames, weights)` (the
generator replays given frames: memcached requests), `inject(frame)`, `captured()`,
`run_c_forward(batch, seconds)` (the C baseline on a fresh model with the same wire).

Locking/ownership: the model has its own mutex (ixgbe_model.h). The SimIxgbe keeps its
heap alive (the model holds raw pointers into the arena) and destroys the model in
`close()` or when garbage. `quiesce()` is the kernel's crash-path hook: a function-level
reset that stops all DMA (queues off, registers back to defaults).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .._core._redleaf_dev import ffi as dffi
from .._core._redleaf_dev import lib as dlib
from .._core.heap import CoreHeap
from . import ixgbe_regs as regs
from .device import Device
from .keepgil import call_keeping_gil, pass_pointers

WIRES = {"none": dlib.IXG_WIRE_NONE, "generator": dlib.IXG_WIRE_GENERATOR,
         "sink": dlib.IXG_WIRE_SINK, "loopback": dlib.IXG_WIRE_LOOPBACK,
         "tap": dlib.IXG_WIRE_TAP}
FCS = 4
MAX_FLOWS = int(dlib.IXG_MAX_FLOWS)  # above 65536 each frame's header is computed (flow-count mode)
DEFAULT_MAC = bytes([0x02, 0x52, 0x4C, 0x49, 0x58, 0x00])  # locally administered


def line_rate_pps(packet_size: int = 64) -> float:
    """10 GbE line rate in frames/s for `packet_size`-byte frames (FCS included)."""
    return float(dlib.ixg_line_rate(packet_size - FCS))


@dataclass(frozen=True)
class IxgbeStats:
    """Cumulative model counters (the clear-on-read registers are separate)."""

    rx_packets: int
    rx_bytes: int
    rx_missed: int
    rx_filtered: int
    rx_oversize: int
    rx_bad_addr: int
    tx_packets: int
    tx_bytes: int
    tx_runt: int
    tx_oversize: int
    tx_bad_addr: int
    tx_bad_desc: int
    bad_ring: int
    gen_packets: int
    sink_packets: int
    sink_bytes: int
    sink_ok: int
    sink_bad: int
    sink_seq_errors: int
    sink_other: int
    tap_rx: int
    tap_tx: int
    tap_errors: int
    resets: int
    passes: int

    @property
    def errors(self) -> int:
        """Bad input the model rejected: runts, oversized frames, bad addresses/rings."""
        return (self.rx_oversize + self.rx_bad_addr + self.tx_runt + self.tx_oversize
                + self.tx_bad_addr + self.tx_bad_desc + self.bad_ring)


class SimIxgbe(Device):
    """An 82599 model with a wire; see the module docstring."""

    kind = "ixgbe"

    def __init__(self, heap: CoreHeap, wire: str = "generator", threaded: bool = False,
                 queues: int = 4, packet_size: int = 64, flows: int = 16,
                 rate_pps: float | None = None, seed: int = 1, tap_name: str | None = None,
                 verify: bool = True, loopback: bool = False, burst: int = 256,
                 capture: bool = False, mac: bytes = DEFAULT_MAC, name: str = "ixgbe0") -> None:
        self._settings: dict[str, Any] = dict(
            wire=wire, queues=queues, packet_size=packet_size, flows=flows,
            rate_pps=rate_pps, seed=seed, verify=verify, loopback=loopback, burst=burst,
            capture=capture, mac=mac)
        self._heap_ref = heap
        self._raw: Any = dffi.NULL
        self._ctrl: Any = None
        cfg = self._config(tap_name=tap_name, **self._settings)
        raw = _create(heap, cfg)
        self._ctrl = dffi.gc(raw, dlib.ixg_destroy)
        self._raw = raw
        self.threaded = threaded
        self.packet_size = packet_size
        self.queues = queues
        self.mac = bytes(mac)
        bar = dffi.buffer(dlib.ixg_bar(raw), dlib.ixg_bar_size(raw))
        super().__init__(name, bar, heap, None if threaded else self._kick)
        self._process = dlib.ixg_process
        self._pass_fn, self._pass_arg = pass_pointers(dffi.addressof(dlib, "ixg_process"), raw)
        self._read_reg = dlib.ixg_read_reg
        if threaded and dlib.ixg_start_thread(raw) != 0:
            raise RuntimeError("cannot start the ixgbe device thread")

    @staticmethod
    def _config(wire: str, queues: int, packet_size: int, flows: int, rate_pps: float | None,
                seed: int, verify: bool, loopback: bool, burst: int, capture: bool,
                mac: bytes, tap_name: str | None) -> Any:
        if wire not in WIRES:
            raise ValueError(f"unknown wire {wire!r}; choose one of {sorted(WIRES)}")
        if type(packet_size) is not int or not 64 <= packet_size <= 1518:
            raise ValueError(f"packet_size must be an int of 64..1518 bytes on the wire (FCS "
                             f"included; the driver sees 60..1514), got {packet_size!r}")
        if rate_pps is not None:
            limit = line_rate_pps(packet_size)
            if not 0 < rate_pps <= limit * 1.000001:
                raise ValueError(f"rate_pps must be > 0 and at most the 10 GbE line rate "
                                 f"{limit:,.0f} pps for {packet_size} B frames, got {rate_pps!r}")
        if len(mac) != 6 or mac[0] & 1:
            raise ValueError(f"mac must be 6 bytes of a unicast address, got {mac!r}")
        if tap_name is not None and (wire != "tap" or not 0 < len(tap_name.encode()) < 16):
            raise ValueError(f"tap_name needs wire='tap' and 1..15 bytes, got {tap_name!r}")
        for label, value, low, high in (("queues", queues, 1, 16), ("flows", flows, 1, MAX_FLOWS),
                                        ("burst", burst, 1, 4096), ("seed", seed, 0, 2**64 - 1)):
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"{label} must be an int of {low}..{high}, got {value!r}")
        cfg = dffi.new("ixg_config *")
        cfg.wire = WIRES[wire]
        cfg.queues = queues
        cfg.frame_bytes = packet_size - FCS
        cfg.flows = flows
        cfg.rate_pps = float(rate_pps or 0.0)
        cfg.seed = seed
        cfg.burst = burst
        cfg.verify = int(verify)
        cfg.loopback = int(loopback)
        cfg.capture = int(capture)
        cfg.mac = list(mac)
        cfg.tap_name = (tap_name or "").encode()
        return cfg

    def _kick(self, offset: int) -> None:
        # An inline pass handles one batch (microseconds; the TAP wire's fd is
        # non-blocking): it keeps the GIL (csrc/keepgil.h). Releasing it for so short a
        # call invites every other busy thread to run first, for up to a switch interval
        # each, on every tail write: in the demo the NIC's loop got 1/6 of its rate.
        call_keeping_gil(self._pass_fn, self._pass_arg)

    def _live(self) -> Any:
        if self._ctrl is None:
            raise RuntimeError(f"{self.name}: the device was closed")
        return self._raw

    # -- registers: statistics clear on read ------------------------------------------
    def read32(self, offset: int) -> int:
        if regs.STATS_FIRST <= offset < regs.STATS_END and type(offset) is int and offset % 4 == 0:
            return int(self._read_reg(self._live(), offset))
        return super().read32(offset)

    # -- modes --------------------------------------------------------------------------
    def start_thread(self) -> None:
        if not dlib.ixg_thread_running(self._live()) and dlib.ixg_start_thread(self._raw) != 0:
            raise RuntimeError("cannot start the ixgbe device thread")
        self.threaded = True
        self._after_write = None

    def stop_thread(self) -> None:
        dlib.ixg_stop_thread(self._raw)
        self.threaded = False
        self._after_write = self._kick

    def process(self) -> int:
        """Run one model pass now; returns frames moved (RX + TX)."""
        return int(self._process(self._live()))

    def quiesce(self) -> None:
        if self._ctrl is not None:
            dlib.ixg_quiesce(self._raw)

    # -- wire hooks ---------------------------------------------------------------------
    def generate(self, n: int) -> int:
        """Send n generator frames into RX now (missed ones count in MPC); returns the
        number delivered. Needs wire 'generator' or 'sink' (the flows' templates)."""
        if type(n) is not int or n < 0:
            raise ValueError(f"generate: n must be an int >= 0, got {n!r}")
        return int(dlib.ixg_generate(self._live(), n))

    def set_replay(self, frames: list[bytes], weights: Any = None) -> None:
        """Replay mode of the generator wire: from now on RX carries copies of `frames`
        (each 60..1514 bytes, without FCS), picked uniformly, or with probability
        proportional to `weights` (e.g. 1/rank**s: Zipf); [] returns to the flows."""
        if self._settings["wire"] != "generator":
            raise ValueError("set_replay needs the generator wire")
        frames = [bytes(f) for f in frames]
        if any(not 60 <= len(f) <= 1514 for f in frames):
            raise ValueError("replay frames must be 60..1514 bytes (without FCS)")
        offsets = np.zeros(len(frames) + 1, dtype=np.uint64)
        offsets[1:] = np.cumsum([len(f) for f in frames])
        blob = b"".join(frames) or b"\0"
        cdf: Any = dffi.NULL
        if weights is not None and frames:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (len(frames),) or not np.all(w >= 0) or not w.sum() > 0:
                raise ValueError("weights must be one non-negative number per frame")
            scaled = np.round(np.cumsum(w) / w.sum() * 2.0**32).astype(np.uint64)
            scaled[-1] = 1 << 32
            cdf_array = np.maximum.accumulate(scaled)
            cdf = dffi.from_buffer("uint64_t[]", cdf_array)
        rc = dlib.ixg_set_replay(self._live(), blob, dffi.from_buffer("uint64_t[]", offsets),
                                 len(frames), cdf)
        if rc != 0:
            raise ValueError(f"ixg_set_replay failed ({rc})")

    def inject(self, frame: bytes) -> bool:
        """Deliver one frame (without FCS) into RX as if from the wire."""
        data = bytes(frame)
        return bool(dlib.ixg_inject(self._live(), data, len(data)))

    def captured(self, count: int = 1) -> list[bytes]:
        """The last `count` transmitted frames, oldest first (needs capture=True)."""
        out = dffi.new("uint8_t[]", dlib.IXG_CAPTURE_BYTES)
        frames: list[bytes] = []
        for k in range(min(count, dlib.IXG_CAPTURE_SLOTS)):
            n = dlib.ixg_captured(self._live(), k, out, dlib.IXG_CAPTURE_BYTES)
            if n < 0:
                break
            frames.append(bytes(dffi.buffer(out, min(n, dlib.IXG_CAPTURE_BYTES))))
        return frames[::-1]

    @property
    def tap_name(self) -> str | None:
        name = dffi.string(dlib.ixg_tap_name(self._live())).decode()
        return name or None

    # -- observation --------------------------------------------------------------------
    def stats(self) -> IxgbeStats:
        out = dffi.new("ixg_stats *")
        dlib.ixg_get_stats(self._live(), out)
        return IxgbeStats(*(int(getattr(out, f.name)) for f in fields(IxgbeStats)))

    def run_c_forward(self, batch: int, seconds: float, ring: int = 512,
                      max_packets: int | None = None, threaded: bool = False) -> dict[str, Any]:
        """The C baseline (ixgbe_host.c): an ixy-fwd-like loop on a FRESH model with this
        one's wire settings (this device is not touched), queue 0, `batch` frames per
        RX/TX call, for `seconds` or `max_packets`. Inline processing unless `threaded`
        (then the model runs on its own thread). Returns packets, seconds, mpps, ..."""
        if self._settings["wire"] == "tap":
            raise ValueError("run_c_forward needs a generator/sink/loopback wire, not 'tap'")
        if type(batch) is not int or not 1 <= batch <= ring // 2:
            raise ValueError(f"batch must be an int of 1..{ring // 2}, got {batch!r}")
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        raw = _create(self._heap_ref, self._config(tap_name=None, **self._settings))
        model = dffi.gc(raw, dlib.ixg_destroy)
        nbytes = int(dlib.ixg_fwd_bench_bytes(ring))
        mem = self.dma_alloc(nbytes)
        try:
            if threaded and dlib.ixg_start_thread(raw) != 0:
                raise RuntimeError("cannot start the ixgbe device thread")
            out = dffi.new("ixg_fwd_result *")
            limit = max_packets if max_packets is not None else 2**63
            t0 = time.perf_counter()
            rc = dlib.ixg_fwd_bench(raw, mem.iova, nbytes, ring, batch, limit,
                                    int(seconds * 1e9), out)
            wall = time.perf_counter() - t0
            dlib.ixg_stop_thread(raw)
            if rc != 0:
                raise RuntimeError(f"C forwarding baseline failed ({rc}: "
                                   f"{'bad arguments' if rc == -1 else 'NIC did not come up'})")
            st = dffi.new("ixg_stats *")
            dlib.ixg_get_stats(raw, st)
            ns = int(out.ns)
            return {"batch": batch, "packets": int(out.tx_packets),
                    "rx_packets": int(out.rx_packets), "tx_dropped": int(out.tx_dropped),
                    "seconds": ns / 1e9, "wall_seconds": wall,
                    "mpps": int(out.tx_packets) / ns * 1e3 if ns > 0 else 0.0,
                    "sink_ok": int(st.sink_ok), "sink_bad": int(st.sink_bad),
                    "rx_missed": int(st.rx_missed), "threaded": threaded}
        finally:
            dlib.ixg_stop_thread(raw)
            dffi.release(model)
            self.dma_free(mem.handle)

    def close(self) -> None:
        """Stop the device thread and free the model (the Device is unusable after)."""
        if self._ctrl is not None:
            dlib.ixg_stop_thread(self._raw)
            self._after_write = None
            ctrl, self._ctrl, self._raw = self._ctrl, None, dffi.NULL
            # later register accesses land in a detached zero BAR, not in freed memory
            detached = bytearray(regs.BAR_SIZE)
            self._r32 = np.frombuffer(detached, dtype="<u4")
            self._r64 = np.frombuffer(detached, dtype="<u8")
            dffi.release(ctrl)


def _create(heap: CoreHeap, cfg: Any) -> Any:
    from .._core import ffi as core_ffi

    err = dffi.new("char[]", 256)
    base = dffi.cast("void *", int(core_ffi.cast("uintptr_t", heap.base)))
    raw = dlib.ixg_create(base, heap.size, heap.iova_base, cfg, err, 256)
    if raw == dffi.NULL:
        raise ValueError(f"cannot create the 82599 model: {dffi.string(err).decode()}")
    return raw
