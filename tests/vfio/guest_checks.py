"""Guest side of the VFIO tests: runs INSIDE the QEMU guest (images/guest.py), as root.

Purpose: prove the unchanged drivers/nvme on QEMU's NVMe controller through VFIO behind
the emulated Intel IOMMU, and report each check as JSON to the writable share (the host
side, test_vfio_qemu.py, asserts on it). Checks, in order (each records ok, detail and
figures; a failing check does not stop the later ones unless they depend on it):
  errors    clear VfioErrors: bogus BDF, device not bound, group busy
  identify  the driver identifies the controller (VID 0x1b36, 'QEMU NVMe Ctrl') and NS 1,
            in QEMU's default 512-byte LBA format (a 4 KiB block is 8 LBAs)
  io        batched writes/reads with checksums across queue wrap-around (both pairs)
  prp       multi-page transfers with PRP2 and PRP lists, pages scattered, on the
            driver's own queue pair, read back through the driver
  iommu     DMA to an IOVA after VFIO_IOMMU_UNMAP_DMA (and to one never mapped) faults:
            the buffer stays untouched and the guest's dmesg shows the DMAR fault
  shadow    the driver behind a shadow survives >= PANICS injected panics; each crash
            quiesces (bus master off + function reset) and the next incarnation
            re-initializes the controller; no acknowledged write is lost
  iops      a functional IOPS figure (TCG: not a performance number)
  cleanup   after close: no DMA mapping, no VFIO fd or BAR mapping left, the group can
            be opened again
  bench     `redleaf-lab bench nvme --device vfio:BDF` (in-process) reports IOPS for the
            direct, proxy and shadow paths, and closes the device
  e1000e    the same VFIO layer reads the e1000e's STATUS and RAL0/RAH0 (MAC); bound
            and released with `redleaf-lab vfio bind|unbind` (in-process)
  lba4096   the second controller, formatted with 4 KiB LBAs: the same driver
            identifies it and does verified I/O (random batches and merged runs)
The guest has two NVMe controllers (images/guest.py NVME_LBA_SIZES): the checks above
run on the first (512-byte LBAs), lba4096 on the second.
Usage: python tests/vfio/guest_checks.py RESULTS.json
"""

from __future__ import annotations

import json
import mmap
import os
import random
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from redleaf_lab.vfio import pci
from redleaf_lab.vfio.backend import VfioNvme
from redleaf_lab.vfio.device import VfioPci
from redleaf_lab.vfio.errors import VfioError

import redleaf_lab
from redleaf_lab.devices.select import VFIO_HEAP_BYTES, open_nvme
from redleaf_lab.heap import BLOCK_SIZE, BlkReq, Block, RRef, RRefDeque
from redleaf_lab.idl.shadow import ShadowPolicy, make_shadow

PANICS = 24
IDENTIFY, WRITE, READ = 0x06, 0x01, 0x02  # NVMe 1.4 §5.15, §6.15, §6.9
E1000E_CLASS = 0x020000
RESULTS: dict[str, Any] = {}
OUT = sys.argv[1] if len(sys.argv) > 1 else "/run/share/results.json"


def check(name: str) -> Callable[[Callable[[], dict[str, Any]]], None]:
    """Run a check now; record {ok, seconds, figures} or the failure's traceback."""
    def run(fn: Callable[[], dict[str, Any]]) -> None:
        t0 = time.monotonic()
        try:
            figures = fn()
            RESULTS[name] = {"ok": True, "figures": figures}
        except BaseException as exc:  # report everything to the host
            RESULTS[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc()[-3000:]}
        RESULTS[name]["seconds"] = round(time.monotonic() - t0, 2)
        with open(OUT, "w") as f:
            json.dump(RESULTS, f, indent=1)
        print(f"guest-check {name}: {'ok' if RESULTS[name]['ok'] else 'FAILED'} "
              f"({RESULTS[name]['seconds']} s)", flush=True)
    return run


def payload(block: int, seq: int) -> np.ndarray:
    data = np.random.default_rng((block << 20) | seq).integers(0, 256, BLOCK_SIZE, np.uint8)
    data[:16] = np.array([block, seq], dtype="<u8").view(np.uint8)
    data[-4:] = np.array([zlib.crc32(data[:-4].tobytes())], "<u4").view(np.uint8)
    return data


def requests(blocks: list[int], seq: int | None) -> RRefDeque:
    dq = RRefDeque.new(BlkReq, max(1, len(blocks)))
    refs = []
    for block in blocks:
        ref = RRef.new(BlkReq)
        view = ref.array()
        view["block"] = block
        if seq is not None:
            view["data"] = payload(block, seq)
        del view
        refs.append(ref)
    dq.push_many(refs)
    return dq


class Workload:
    """Writes with sequence numbers and checksums; reads verify the last acked write."""

    def __init__(self, bdev: Any, seed: int, span: int, base: int = 0) -> None:
        self.bdev, self.rng, self.span, self.base = bdev, random.Random(seed), span, base
        self.acked: dict[int, int] = {}
        self.seq = 0
        self.verified = 0

    def write(self, blocks: list[int]) -> None:
        self.seq += 1
        taken, _s, done = self.bdev.submit_and_poll(requests(blocks, self.seq),
                                                    RRefDeque.new(BlkReq, len(blocks)), True)
        assert taken == len(blocks) == len(done), (taken, len(blocks))
        self.acked.update(dict.fromkeys(blocks, self.seq))

    def read(self, blocks: list[int]) -> None:
        taken, _s, done = self.bdev.submit_and_poll(requests(blocks, None),
                                                    RRefDeque.new(BlkReq, len(blocks)), False)
        assert taken == len(blocks)
        for ref in done.pop_many():
            view = ref.readonly()
            block, data = int(view["block"]), view["data"]
            if block in self.acked:
                assert zlib.crc32(data[:-4].tobytes()) == int(data[-4:].view("<u4")[0]), block
                assert np.array_equal(data, payload(block, self.acked[block])), f"block {block} stale"
            else:
                assert not data.any(), f"block {block} never written but not zero"
            self.verified += 1
            del view

    def step(self) -> None:
        blocks = self.rng.sample(range(self.base, self.base + self.span), self.rng.randint(1, 24))
        if self.rng.random() < 0.5:
            self.write(blocks)
        else:
            self.read(blocks)

    def verify_all(self) -> None:
        blocks = sorted(self.acked)
        for i in range(0, len(blocks), 200):
            self.read(blocks[i : i + 200])


def dmesg() -> str:
    return subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout


def vfio_fds() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "vfio" in target:
            found.append(f"{fd} -> {target}")
    return found


def main() -> int:
    nvme_bdfs = pci.find_by_class(pci.NVME_CLASS)  # 512-byte LBAs, then 4 KiB (PCI order)
    nvme_bdf = nvme_bdfs[0]
    nic_bdf = pci.find_by_class(E1000E_CLASS)[0]
    state: dict[str, Any] = {}

    @check("errors")
    def _errors() -> dict[str, Any]:
        msgs = {}
        for bad, want in (("0000:00:1f.7", "no PCI device"), ("zz:00.0", "malformed PCI address"),
                          (nic_bdf, "not vfio-pci")):
            try:
                VfioPci(bad)
            except VfioError as exc:
                assert want in str(exc), (bad, str(exc))
                msgs[bad] = str(exc)
            else:
                raise AssertionError(f"VfioPci({bad!r}) did not fail")
        group = pci.bind_vfio(nvme_bdf)
        assert os.path.exists(f"/dev/vfio/{group}"), group
        first = VfioPci(nvme_bdf)
        try:
            VfioPci(nvme_bdf)
        except VfioError as exc:
            assert "busy" in str(exc), str(exc)
            msgs["second open"] = str(exc)
        else:
            raise AssertionError("a second open of the same group did not fail")
        finally:
            first.close()
        state["fds_before"] = vfio_fds()
        return {"messages": msgs, "group": group, "status": pci.status(nvme_bdf).lines()}

    kernel = redleaf_lab.boot(heap_bytes=VFIO_HEAP_BYTES, max_objects=1 << 16)

    @check("identify")
    def _identify() -> dict[str, Any]:
        dev = open_nvme(kernel, f"vfio:{nvme_bdf}")
        assert isinstance(dev, VfioNvme)
        state["dev"] = dev
        state["bdev"] = kernel.load("nvme", device=dev)
        drv = kernel.domain("nvme").impl
        model, serial, nsid, blocks, pairs, depth = drv.identify()
        page = dev.dma_alloc(4096)
        drv._admin.command(IDENTIFY, prp1=page.iova, cdw10=1)  # §5.15.2.2
        vid = int(page.array[0:2].view("<u2")[0])
        dev.dma_free(page.handle)
        assert vid == 0x1B36 and model == "QEMU NVMe Ctrl", (hex(vid), model)
        assert nsid == 1 and blocks == 64 << 20 >> 12 and pairs == 2, (nsid, blocks, pairs)
        assert dev.pci.ids()[0] == 0x1B36
        assert drv.lba_size == 512 and serial == "rllab-lba512", (drv.lba_size, serial)
        return {"vid": vid, "model": model, "serial": serial, "nsid": nsid, "blocks": blocks,
                "lba_size": drv.lba_size,
                "io_queue_pairs": pairs, "depth": depth, "cap": hex(dev.read64(0)),
                "vs": hex(dev.read32(8)), "bar_bytes": dev.bar_size,
                "heap_iova": hex(dev.heap_iova), "can_reset": dev.pci.can_reset,
                "iommu_windows": [[hex(a), hex(b)] for a, b in dev.pci.container.windows]}

    @check("io")
    def _io() -> dict[str, Any]:
        bdev, drv = state["bdev"], kernel.domain("nvme").impl
        work = Workload(bdev, seed=5, span=4096)
        rng = random.Random(3)
        for i in range(8):  # 300 > a queue's room (255): split; alternating pairs wrap
            work.write(rng.sample(range(4096), 300 if i % 2 == 0 else 40))
        work.verify_all()
        wrapped = [qp.completed for qp in drv._pairs]
        assert all(c > 256 for c in wrapped), wrapped
        state["work"] = work
        return {"blocks_written": sum(300 if i % 2 == 0 else 40 for i in range(8)),
                "blocks_verified": work.verified, "completions_per_pair": wrapped}

    @check("prp")
    def _prp() -> dict[str, Any]:
        dev, drv, bdev = state["dev"], kernel.domain("nvme").impl, state["bdev"]
        qp, rng, sizes = drv._pairs[0], np.random.default_rng(9), [2, 3, 17, 64, 128]
        slba, verified = 8192, 0
        lbas = 1 << drv.lba_shift  # raw commands count LBAs: a 4 KiB page is `lbas` of them
        for pages in sizes:  # 2 pages: PRP2 is the page; more: PRP2 -> list (§4.3)
            buf, lst = dev.dma_alloc(pages * 4096), dev.dma_alloc(4096)
            order = rng.permutation(pages)  # the device must follow the list, not contiguity
            buf.array[:] = rng.integers(0, 256, pages * 4096, np.uint8)
            addrs = buf.iova + 4096 * order
            prp2 = int(addrs[1]) if pages == 2 else lst.iova
            lst.array[: 8 * (pages - 1)].view("<u8")[:] = addrs[1:]
            qp.command(WRITE, drv.nsid, prp1=int(addrs[0]), prp2=prp2, cdw10=slba * lbas,
                       cdw12=pages * lbas - 1)
            for i in range(pages):  # through the unchanged driver, one block at a time
                got = bdev.read(slba + i, RRef.new(Block)).readonly()
                expect = buf.array[4096 * order[i] : 4096 * (order[i] + 1)]
                assert np.array_equal(got, expect), (pages, i)
                verified += 1
            back = dev.dma_alloc(pages * 4096)  # and read it back with a list too
            lst.array[: 8 * (pages - 1)].view("<u8")[:] = back.iova + 4096 * np.arange(1, pages)
            qp.command(READ, drv.nsid, prp1=back.iova,
                       prp2=back.iova + 4096 if pages == 2 else lst.iova, cdw10=slba * lbas,
                       cdw12=pages * lbas - 1)
            for i in range(pages):
                assert np.array_equal(back.array[4096 * i : 4096 * (i + 1)],
                                      buf.array[4096 * order[i] : 4096 * (order[i] + 1)])
            for b in (buf, lst, back):
                dev.dma_free(b.handle)
            slba += pages
        return {"transfer_pages": sizes, "blocks_verified": verified, "mdts": drv.mdts}

    @check("iommu")
    def _iommu() -> dict[str, Any]:
        dev, drv = state["dev"], kernel.domain("nvme").impl
        buf = mmap.mmap(-1, 4096)
        page = np.frombuffer(buf, np.uint8)
        iova = dev.map_buffer(buf)
        drv._admin.command(IDENTIFY, prp1=iova, cdw10=1)  # mapped: the DMA lands
        assert int(page[0:2].view("<u2")[0]) == 0x1B36
        dev.unmap_buffer(iova)
        page[:] = 0
        never = 0x40_0000_0000  # 256 GiB: inside 39 bits, never mapped
        faults: dict[str, Any] = {}
        for name, target in (("unmapped", iova), ("never-mapped", never)):
            before = len(dmesg())
            status = "ok"
            try:
                drv._admin.command(IDENTIFY, prp1=target, cdw10=1, timeout=5.0)
            except Exception as exc:  # QEMU 7.2 still completes with status 0
                status = f"{type(exc).__name__}: {exc}"
            # wait for the fault interrupt to be logged before the next fault: VT-d has
            # one fault recording register here, a second fault meanwhile only overflows
            want = (f"fault addr 0x{target:x}", f"fault addr {target:x}")
            deadline, hits = time.monotonic() + 5.0, []
            while not hits and time.monotonic() < deadline:
                hits = [ln for ln in dmesg()[before:].splitlines()
                        if "DMAR" in ln and any(w in ln.lower() for w in want)]
                time.sleep(0.05)
            assert hits, f"no DMAR fault for {name} IOVA {target:#x} in dmesg: {dmesg()[before:][-600:]}"
            faults[name] = {"iova": hex(target), "completion": status, "dmesg": hits[0].strip()}
        assert not page.any(), "the device wrote through an unmapped IOVA"
        del page
        buf.close()
        return faults

    @check("shadow")
    def _shadow() -> dict[str, Any]:
        dev = state["dev"]
        policy = ShadowPolicy(max_restarts=10_000, window_s=1.0, max_attempts=50, backoff_s=0.0)
        shadow = make_shadow(kernel, "nvme", policy)
        work = Workload(shadow, seed=17, span=512, base=12288)  # blocks no other check uses
        crashes0, quiesce0, resets0 = kernel.crashes("nvme"), dev.quiesces, dev.resets
        restarts0 = kernel.restarts("nvme")
        # one panic by hand: after the kernel's quiesce the controller is reset (CC.EN = 0,
        # CSTS.RDY = 0: its queues are gone) and bus mastering is back for the next driver
        assert dev.read32(0x14) & 1 and kernel.panic("nvme", "by hand")
        kernel.domain("nvme").settled.wait(5.0)
        after_panic = {"cc_en": dev.read32(0x14) & 1, "csts_rdy": dev.read32(0x1C) & 1,
                       "bus_master": dev.pci.bus_master_enabled()}
        assert after_panic == {"cc_en": 0, "csts_rdy": 0, "bus_master": True}, after_panic
        i = 0
        t0 = time.monotonic()
        while (kernel.crashes("nvme") - crashes0 < PANICS or i < 24) and i < 10 * PANICS:
            mode = ("next", "probability", "async")[i % 3]
            timer = None
            if mode == "next":
                kernel.faults.next_call("nvme")
            elif mode == "probability":
                kernel.faults.probability("nvme", 0.5, seed=i)
            else:
                timer = threading.Timer(0.002 * (i % 5), kernel.panic, ("nvme", "async"))
                timer.start()
            work.step()
            kernel.faults.clear("nvme")
            if timer is not None:
                timer.join()
            i += 1
        for _ in range(10):
            work.step()
        work.verify_all()
        crashes = kernel.crashes("nvme") - crashes0
        restarts = kernel.restarts("nvme") - restarts0
        assert crashes >= PANICS, crashes
        assert dev.quiesces - quiesce0 == crashes and dev.resets - resets0 == crashes
        assert restarts >= crashes - 1, (restarts, crashes)
        assert kernel.domain("nvme").state == "running"
        assert dev.read32(0x14) & 1 and dev.read32(0x1C) & 3 == 1  # CC.EN, CSTS.RDY, no CFS
        return {"after_first_panic": after_panic,
                "seconds_per_panic": round((time.monotonic() - t0) / crashes, 3),
                "incarnation": kernel.domain("nvme").incarnation, "panics": crashes, "restarts": restarts, "quiesces": dev.quiesces - quiesce0,
                "function_resets": dev.resets - resets0, "writes_acked": len(work.acked),
                "blocks_verified": work.verified, "steps": i}

    @check("iops")
    def _iops() -> dict[str, Any]:
        bdev, rows = kernel.proxy("nvme"), []
        for batch, write in ((1, False), (32, False), (128, False), (32, True)):
            submit = requests(list(range(batch)), 1 if write else None)
            collect, n, t0 = RRefDeque.new(BlkReq, batch), 0, time.monotonic()
            while time.monotonic() - t0 < 0.7:
                taken, submit, collect = bdev.submit_and_poll(submit, collect, write)
                submit, collect = collect, submit
                n += taken
            seconds = time.monotonic() - t0
            rows.append({"batch": batch, "op": "write" if write else "read",
                         "iops": round(n / seconds)})
        return {"rows": rows, "iops": max(r["iops"] for r in rows),
                "note": "functional figure under TCG emulation, not a performance one"}

    @check("cleanup")
    def _cleanup() -> dict[str, Any]:
        dev = state.pop("dev")
        state.pop("bdev", None)
        state.pop("work", None)
        kernel.shutdown()
        container = dev.pci.container
        dev.close()
        assert container.closed and not container.mappings(), container.mappings()
        left = vfio_fds()
        assert left == [], left
        with open("/proc/self/maps") as f:
            maps = [ln for ln in f if "vfio" in ln]
        assert maps == [], maps
        again = VfioPci(nvme_bdf)  # the group is free again: nothing kept it open
        again.close()
        assert vfio_fds() == []
        return {"vfio_fds_after": left, "vfio_maps_after": len(maps),
                "fds_before_boot": state["fds_before"]}

    @check("bench")
    def _bench() -> dict[str, Any]:
        import contextlib
        import io

        from redleaf_lab.cli import main as cli

        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # the CLI, in-process, on the freed device
            code = cli(["bench", "nvme", "--device", f"vfio:{nvme_bdf}", "--seconds", "0.25",
                        "--json"])
        assert code == 0, code
        rows = json.loads(out.getvalue())
        paths = {r["path"] for r in rows}  # python-*: the same paths on the Python proxies
        assert {"direct", "proxy", "shadow"} <= paths, rows[:3]
        assert paths <= {"direct", "proxy", "shadow", "python-proxy", "python-shadow"}, paths
        assert all(r["iops"] > 0 and r["device"] == f"vfio:{nvme_bdf}" for r in rows)
        assert vfio_fds() == []  # the benchmark closed the device
        b32 = {r["path"]: r["iops"] for r in rows
               if r["workload"] == "4k-randread" and r["batch"] == 32}
        return {"rows": len(rows), "randread_b32_iops": b32,
                "note": "redleaf-lab bench nvme --device vfio:BDF under TCG: functional only"}

    @check("e1000e")
    def _e1000e() -> dict[str, Any]:
        from redleaf_lab.cli import main as cli

        assert cli(["vfio", "bind", nic_bdf]) == 0  # the CLI, in-process
        assert pci.driver(nic_bdf) == "vfio-pci"
        nic = VfioPci(nic_bdf)
        try:
            bar = nic.map_bar(0)
            bar_bytes = len(bar)
            regs = memoryview(bar).cast("I")
            status, ral, rah = regs[0x8 // 4], regs[0x5400 // 4], regs[0x5404 // 4]
            regs.release()
            mac = (ral | (rah & 0xFFFF) << 32).to_bytes(6, "little")
            assert rah >> 31 == 1, hex(rah)  # RAH.AV: address valid (82574 datasheet §10.2.5.9)
            assert mac[:3] == bytes([0x52, 0x54, 0x00]), mac.hex(":")
            ids = nic.ids()
        finally:
            nic.close()
        assert vfio_fds() == []
        assert cli(["vfio", "unbind", nic_bdf]) == 0 and pci.driver(nic_bdf) is None
        with open(f"/sys/bus/pci/devices/{nic_bdf}/driver_override") as f:
            assert f.read().strip() == "(null)"
        return {"bdf": nic_bdf, "vendor_device": f"{ids[0]:04x}:{ids[1]:04x}",
                "status": hex(status), "mac": mac.hex(":"), "bar0_bytes": bar_bytes}

    @check("lba4096")
    def _lba4096() -> dict[str, Any]:
        from redleaf_lab.devices.select import boot_nvme

        assert len(nvme_bdfs) == 2, nvme_bdfs
        bdf = nvme_bdfs[1]
        pci.bind_vfio(bdf)
        setup = boot_nvme(f"vfio:{bdf}")
        try:
            drv = setup.kernel.domain("nvme").impl
            model, serial, _nsid, blocks, _pairs, _depth = drv.identify()
            assert drv.lba_size == 4096 and serial == "rllab-lba4096", (drv.lba_size, serial)
            assert blocks == 64 << 20 >> 12, blocks
            work = Workload(setup.bdev, seed=23, span=2048)
            rng = random.Random(4)
            for _ in range(6):  # random batches, and runs merged into PRP-list commands
                work.write(rng.sample(range(2048), 100))
                first = rng.randrange(0, 2048 - 64)
                work.write(list(range(first, first + 64)))
            work.verify_all()
            last = blocks - 1  # the namespace's last block: SLBA = NSZE - 1
            work.write([last])
            work.read([last])
            return {"bdf": bdf, "model": model, "serial": serial, "lba_size": drv.lba_size,
                    "blocks": blocks, "blocks_written": len(work.acked),
                    "blocks_verified": work.verified}
        finally:
            setup.close()

    return 0 if all(r["ok"] for r in RESULTS.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
