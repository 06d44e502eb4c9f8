"""The C NVMe controller model against the spec, driven through raw register writes.

Covers the registers (CAP, VS, CC/CSTS enable and reset, shutdown, doorbell stride),
the admin commands, phase-tag wrap and SQ head reporting, PRP lists (1, 2, more pages,
a list page with exactly 512 entries, a chained list), every error status the model
returns, the fatal status (CFS), quiesce, the device thread and file-backed media.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from nvme_host import CC_ENABLE, Queue, create_pair, enable

from redleaf_lab.devices.sim_nvme import REG_AQA, REG_ASQ, REG_CC, REG_CSTS, SimNvme

BLOCKS = 2048
INVALID_OPCODE, INVALID_FIELD, XFER_ERROR, INVALID_NS = 0x001, 0x002, 0x004, 0x00B
PRP_OFFSET, LBA_RANGE = 0x013, 0x080
CQ_INVALID, INVALID_QID, INVALID_QSIZE, INVALID_LOG, INVALID_DELETION = (
    0x100, 0x101, 0x102, 0x109, 0x10C)


@pytest.fixture
def dev(kernel):
    device = SimNvme(kernel.heap, blocks=BLOCKS, mqes=255, max_ioq=4)
    yield device
    device.close()


@pytest.fixture
def admin(dev) -> Queue:
    return enable(dev)


@pytest.fixture
def io(admin) -> Queue:
    return create_pair(admin, 1, 8)


def fill(dev, nbytes: int, seed: int):
    buf = dev.dma_alloc(nbytes)
    buf.array[:] = np.random.default_rng(seed).integers(0, 256, nbytes, np.uint8)
    return buf


def rw(q: Queue, op: int, lba: int, nlb: int, prp1: int, prp2: int = 0, nsid: int = 1):
    return q.cmd(op, nsid=nsid, prp1=prp1, prp2=prp2,
                 cdw={10: lba & 0xFFFFFFFF, 11: lba >> 32, 12: nlb - 1})


def media(dev, lba: int, nbytes: int) -> np.ndarray:
    return dev.media()[lba * 4096 : lba * 4096 + nbytes]


# -- registers ---------------------------------------------------------------------------
def test_cap_vs_and_enable_disable(dev):
    cap = dev.read64(0)
    assert cap & 0xFFFF == 255 and (cap >> 16) & 1 == 1  # MQES, CQR
    assert (cap >> 24) & 0xFF > 0 and (cap >> 32) & 0xF == 0  # TO, DSTRD
    assert (cap >> 37) & 1 == 1 and (cap >> 48) & 0xFF == 0  # CSS NVM, MPSMIN/MAX 4 KiB
    assert dev.read32(8) == 0x00010400
    assert dev.read32(REG_CSTS) == 0
    admin = enable(dev)
    dev.write32(REG_CC, CC_ENABLE | (1 << 14))  # SHN normal
    assert (dev.read32(REG_CSTS) >> 2) & 3 == 2  # SHST complete
    dev.write32(REG_CC, 0)
    assert dev.read32(REG_CSTS) == 0
    del admin


def test_reset_through_cc_en_deletes_io_queues(dev, admin, io):
    dev.write32(REG_CC, 0)
    assert dev.read32(REG_CSTS) & 1 == 0 and dev.stats().resets == 1
    admin2 = enable(dev)
    buf = dev.dma_alloc(4096)
    # queue 1 no longer exists: creating it again succeeds, deleting it twice does not
    again = create_pair(admin2, 1, 8)
    assert rw(again, 0x02, 0, 1, buf.iova).status == 0
    assert admin2.cmd(0x00, cdw={10: 1}).status == 0
    assert admin2.cmd(0x00, cdw={10: 1}).status == INVALID_QID


def test_bad_admin_queue_address_is_a_fatal_status(dev):
    dev.write32(REG_AQA, (15 << 16) | 15)
    dev.write64(REG_ASQ, 0x10)  # outside the arena and unaligned
    dev.write32(REG_CC, CC_ENABLE)
    assert dev.read32(REG_CSTS) & 3 == 2  # CFS, not RDY
    dev.write32(REG_CC, 0)
    assert dev.read32(REG_CSTS) == 0
    enable(dev)


def test_doorbell_stride(kernel):
    dev = SimNvme(kernel.heap, blocks=64, dstrd=2, max_ioq=2)
    try:
        assert (dev.read64(0) >> 32) & 0xF == 2
        q = create_pair(enable(dev), 2, 4)
        assert q.sq_db == 0x1000 + 2 * 2 * 16 and q.cq_db == 0x1000 + 5 * 16
        assert rw(q, 0x02, 3, 1, dev.dma_alloc(4096).iova).status == 0
    finally:
        dev.close()


# -- admin commands ------------------------------------------------------------------------
def test_identify_controller_namespace_and_list(dev, admin):
    buf = dev.dma_alloc(4096)
    assert admin.cmd(0x06, prp1=buf.iova, cdw={10: 1}).status == 0
    d = buf.array
    assert d[77] == 10 and d[512] == 0x66 and d[513] == 0x44
    assert int(d[516:520].view("<u4")[0]) == 1 and bytes(d[24:35]) == b"RedLeaf Lab"
    assert admin.cmd(0x06, nsid=1, prp1=buf.iova, cdw={10: 0}).status == 0
    nsze, ncap, nuse = d[:24].view("<u8")
    assert nsze == ncap == nuse == BLOCKS and d[25] == 1 and d[26] & 0xF == 1
    lbaf = d[128:136].view("<u4")  # LBAF0 512 B, LBAF1 4 KiB (in use); MS = 0
    assert [int(f) >> 16 for f in lbaf] == [9, 12] and not (lbaf & 0xFFFF).any()
    assert admin.cmd(0x06, nsid=0, prp1=buf.iova, cdw={10: 2}).status == 0
    assert list(d[:8].view("<u4")) == [1, 0]
    assert admin.cmd(0x06, nsid=1, prp1=buf.iova, cdw={10: 2}).status == 0
    assert not d[:8].any()
    assert admin.cmd(0x06, nsid=2, prp1=buf.iova, cdw={10: 0}).status == INVALID_NS
    assert admin.cmd(0x06, prp1=buf.iova, cdw={10: 9}).status == INVALID_FIELD


def test_features_number_of_queues(dev, admin):
    assert admin.cmd(0x0A, cdw={10: 7}).dw0 == (3 << 16) | 3
    assert admin.cmd(0x09, cdw={10: 7, 11: (1 << 16) | 1}).dw0 == (1 << 16) | 1
    assert admin.cmd(0x0A, cdw={10: 7}).dw0 == (1 << 16) | 1
    assert admin.cmd(0x09, cdw={10: 7, 11: 0xFFFF}).status == INVALID_FIELD
    assert admin.cmd(0x0A, cdw={10: 0x42}).status == INVALID_FIELD
    create_pair(admin, 2, 4)
    q3 = Queue(dev, 3, 4)
    assert admin.cmd(0x05, prp1=q3.cq.iova, cdw={10: (3 << 16) | 3, 11: 1}).status == INVALID_QID


def test_queue_creation_errors(dev, admin):
    q = Queue(dev, 1, 8)
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: (7 << 16) | 0, 11: 1}).status == INVALID_QID
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: (7 << 16) | 9, 11: 1}).status == INVALID_QID
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: 1, 11: 1}).status == INVALID_QSIZE
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: (256 << 16) | 1, 11: 1}).status == INVALID_QSIZE
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: (7 << 16) | 1, 11: 0}).status == INVALID_FIELD
    assert admin.cmd(0x05, prp1=q.cq.iova + 64, cdw={10: (7 << 16) | 1, 11: 1}).status == PRP_OFFSET
    assert admin.cmd(0x05, prp1=4096, cdw={10: (7 << 16) | 1, 11: 1}).status == XFER_ERROR
    assert admin.cmd(0x01, prp1=q.sq.iova, cdw={10: (7 << 16) | 1, 11: (1 << 16) | 1}
                     ).status == CQ_INVALID
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: (7 << 16) | 1, 11: 1}).status == 0
    assert admin.cmd(0x05, prp1=q.cq.iova, cdw={10: (7 << 16) | 1, 11: 1}).status == INVALID_QID
    assert admin.cmd(0x01, prp1=q.sq.iova, cdw={10: (7 << 16) | 1, 11: (1 << 16) | 1}).status == 0
    assert admin.cmd(0x04, cdw={10: 1}).status == INVALID_DELETION  # an SQ still uses it
    assert admin.cmd(0x04, cdw={10: 0}).status == INVALID_QID
    assert admin.cmd(0x00, cdw={10: 1}).status == 0
    assert admin.cmd(0x04, cdw={10: 1}).status == 0


def test_invalid_opcodes_and_fields(dev, admin, io):
    assert admin.cmd(0x7F).status == INVALID_OPCODE
    assert admin.cmd(0x06, prp1=dev.dma_alloc(4096).iova, cdw={10: 1}, flags=0x40
                     ).status == INVALID_FIELD  # PSDT: SGLs are not supported
    assert io.cmd(0x05, nsid=1).status == INVALID_OPCODE
    assert rw(io, 0x02, 0, 1, dev.dma_alloc(4096).iova, nsid=2).status == INVALID_NS
    assert io.cmd(0x00, nsid=0xFFFFFFFF).status == 0  # Flush of every namespace
    assert rw(io, 0x02, 0, 1025, dev.dma_alloc(4096).iova).status == INVALID_FIELD  # > MDTS


def test_error_log_page(dev, admin, io):
    buf = dev.dma_alloc(4096)
    assert rw(io, 0x02, BLOCKS, 1, buf.iova).status == LBA_RANGE
    assert admin.cmd(0x7E).status == INVALID_OPCODE
    assert admin.cmd(0x02, prp1=buf.iova, cdw={10: (31 << 16) | 1}).status == 0
    newest, older = buf.array[:64], buf.array[64:128]
    assert int(newest[:8].view("<u8")[0]) == 2 and int(older[:8].view("<u8")[0]) == 1
    assert int(older[8:10].view("<u2")[0]) == 1  # SQID of the bad read
    assert (int(older[12:14].view("<u2")[0]) >> 1) & 0xFF == 0x80
    assert int(older[16:24].view("<u8")[0]) == BLOCKS
    assert admin.cmd(0x02, prp1=buf.iova, cdw={10: (15 << 16) | 0x7F}).status == INVALID_LOG


# -- I/O, PRPs, phase tags -------------------------------------------------------------------
def test_read_write_flush_write_zeroes(dev, io):
    src, dst = fill(dev, 4096, 1), dev.dma_alloc(4096)
    assert rw(io, 0x01, 9, 1, src.iova).status == 0
    assert np.array_equal(media(dev, 9, 4096), src.array)
    assert rw(io, 0x02, 9, 1, dst.iova).status == 0 and np.array_equal(dst.array, src.array)
    assert io.cmd(0x00, nsid=1).status == 0
    assert io.cmd(0x08, nsid=1, cdw={10: 9, 12: 0}).status == 0 and not media(dev, 9, 4096).any()
    assert io.cmd(0x08, nsid=1, cdw={10: BLOCKS - 1, 12: 1}).status == LBA_RANGE


@pytest.mark.parametrize("lba", [BLOCKS, BLOCKS - 1, 2**40])
def test_lba_out_of_range(dev, io, lba):
    assert rw(io, 0x01, lba, 2, fill(dev, 8192, 2).iova, fill(dev, 4096, 3).iova
              ).status == LBA_RANGE
    assert not dev.media().any()


def test_prp1_offset_and_two_pages(dev, io):
    src = fill(dev, 3 * 4096, 4)
    # PRP1 with an offset of 512: the first page gives 3584 bytes, PRP2 the next page
    assert rw(io, 0x01, 0, 1, src.iova + 512, src.iova + 8192).status == 0
    want = np.concatenate([src.array[512:4096], src.array[8192 : 8192 + 512]])
    assert np.array_equal(media(dev, 0, 4096), want)
    assert rw(io, 0x01, 0, 1, src.iova + 2).status == PRP_OFFSET  # not dword aligned
    assert rw(io, 0x01, 0, 2, src.iova, src.iova + 4096 + 8).status == PRP_OFFSET
    assert rw(io, 0x01, 0, 2, src.iova, 0x1000).status == XFER_ERROR  # outside the arena


def prp_list(dev, pages: list[int], chain_at: int | None = None):
    """A list page holding `pages`; with chain_at, entries from there go to a second page."""
    lst = dev.dma_alloc(8192)
    entries = lst.array.view("<u8")
    if chain_at is None:
        entries[: len(pages)] = pages
    else:
        entries[:chain_at] = pages[:chain_at]
        entries[chain_at] = lst.iova + 4096
        entries[512 : 512 + len(pages) - chain_at] = pages[chain_at:]
    return lst


@pytest.mark.parametrize("npages", [3, 8, 513])
def test_prp_list(dev, io, npages):
    src = fill(dev, npages * 4096, npages)
    pages = [src.iova + 4096 * i for i in range(npages)][::-1]  # scattered order
    lst = prp_list(dev, pages[1:])
    assert rw(io, 0x01, 100, npages, pages[0], lst.iova).status == 0
    want = np.concatenate([src.array[p - src.iova : p - src.iova + 4096] for p in pages])
    assert np.array_equal(media(dev, 100, npages * 4096), want)
    dst = dev.dma_alloc(npages * 4096)
    lst2 = prp_list(dev, [dst.iova + 4096 * i for i in range(1, npages)])
    assert rw(io, 0x02, 100, npages, dst.iova, lst2.iova).status == 0
    assert np.array_equal(dst.array, want)


def test_chained_prp_list(dev, io):
    npages = 1 + 511 + 10  # PRP1, a full list page (511 data + chain), 10 on the next page
    src = fill(dev, npages * 4096, 7)
    pages = [src.iova + 4096 * i for i in range(npages)]
    lst = prp_list(dev, pages[1:], chain_at=511)
    assert rw(io, 0x01, 0, npages, pages[0], lst.iova).status == 0
    assert np.array_equal(media(dev, 0, npages * 4096), src.array)


def test_bad_prp_list_entries(dev, io):
    src = fill(dev, 4 * 4096, 8)
    lst = prp_list(dev, [src.iova + 4096, src.iova + 8192 + 16, src.iova + 12288])
    assert rw(io, 0x01, 0, 4, src.iova, lst.iova).status == PRP_OFFSET
    lst = prp_list(dev, [src.iova + 4096, 0xdead000, src.iova + 12288])
    assert rw(io, 0x01, 0, 4, src.iova, lst.iova).status == XFER_ERROR
    assert rw(io, 0x01, 0, 4, src.iova, lst.iova + 4).status == PRP_OFFSET
    assert not dev.media().any()  # nothing is transferred before the PRPs check out


def test_phase_tag_wrap_and_sq_head(dev, admin):
    q = create_pair(admin, 1, 4)
    buf = dev.dma_alloc(4096)
    phases, heads = [], []
    for i in range(10):
        c = rw(q, 0x02, i, 1, buf.iova)
        phases.append(c.phase)
        heads.append(c.sqhd)
    assert phases == [1, 1, 1, 1, 0, 0, 0, 0, 1, 1]
    assert heads == [1, 2, 3, 0, 1, 2, 3, 0, 1, 2]


def test_full_cq_holds_commands_until_the_head_moves(dev, admin):
    q = create_pair(admin, 1, 4)
    buf = dev.dma_alloc(4096)
    for i in range(3):
        q.put(0x02, nsid=1, prp1=buf.iova, cdw={10: i})
    q.ring()
    assert len(q.reap()) == 3
    for i in range(3):  # the CQ has room for 3 (one slot stays empty)
        q.put(0x02, nsid=1, prp1=buf.iova, cdw={10: i})
    q.ring()
    head = q.head
    got = q.reap()
    assert [c.sqhd for c in got] == [0, 1, 2] and q.head == (head + 3) % 4


def test_invalid_doorbell_value_is_ignored(dev, io):
    dev.write32(io.sq_db, 99)
    assert dev.stats().commands == 2  # only the two Create commands of create_pair
    assert rw(io, 0x02, 0, 1, dev.dma_alloc(4096).iova).status == 0


# -- faults, quiesce, thread, file media -------------------------------------------------------
def test_fatal_status_stops_processing_until_reset(dev, admin, io):
    buf = dev.dma_alloc(4096)
    dev.fatal()
    assert dev.read32(REG_CSTS) & 2
    io.put(0x02, nsid=1, prp1=buf.iova)
    io.ring()
    assert io.reap() == []
    dev.write32(REG_CC, 0)
    assert dev.read32(REG_CSTS) == 0
    q = create_pair(enable(dev), 1, 8)
    dev.fatal_after(2)
    assert rw(q, 0x02, 0, 1, buf.iova).status == 0
    assert rw(q, 0x02, 0, 1, buf.iova).status == 0  # the second completes, then CFS
    assert dev.read32(REG_CSTS) & 2


def test_quiesce_drops_queues_and_registers(dev, admin, io):
    dev.quiesce()
    assert dev.read32(REG_CC) == 0 and dev.read32(REG_CSTS) == 0 and dev.read64(REG_ASQ) == 0
    io.put(0x02, nsid=1, prp1=dev.dma_alloc(4096).iova)
    io.ring()
    assert io.reap() == []
    enable(dev)


def test_device_thread(kernel):
    dev = SimNvme(kernel.heap, blocks=256, threaded=True)
    try:
        dev.write32(REG_CC, 0)
        admin = Queue(dev, 0, 8)
        dev.write32(REG_AQA, (7 << 16) | 7)
        dev.write64(REG_ASQ, admin.sq.iova)
        dev.write64(0x30, admin.cq.iova)
        dev.write32(REG_CC, CC_ENABLE)
        deadline = time.monotonic() + 5
        while dev.read32(REG_CSTS) & 1 == 0:
            assert time.monotonic() < deadline
        src = fill(dev, 4096, 11)
        cq = Queue(dev, 1, 16)
        for cid, (op, kw) in enumerate([(0x05, {"prp1": cq.cq.iova, "cdw": {10: (15 << 16) | 1, 11: 1}}),
                                        (0x01, {"prp1": cq.sq.iova, "cdw": {10: (15 << 16) | 1, 11: 0x10001}})]):
            admin.put(op, **kw)
            admin.ring()
            while not (got := admin.reap()):
                assert time.monotonic() < deadline
            assert got[0].status == 0, cid
        for i in range(12):
            cq.put(0x01, nsid=1, prp1=src.iova, cdw={10: i})
        cq.ring()
        done: list = []
        while len(done) < 12:
            done += cq.reap()
            assert time.monotonic() < deadline
        assert all(c.status == 0 for c in done)
        assert all(np.array_equal(media(dev, i, 4096), src.array) for i in range(12))
    finally:
        dev.close()


def test_file_backed_media(kernel, tmp_path):
    path = tmp_path / "ns1.img"
    dev = SimNvme(kernel.heap, blocks=64, media_path=str(path))
    try:
        q = create_pair(enable(dev), 1, 4)
        src = fill(dev, 4096, 12)
        assert rw(q, 0x01, 5, 1, src.iova).status == 0
        assert q.cmd(0x00, nsid=1).status == 0
    finally:
        dev.close()
    data = np.fromfile(path, np.uint8)
    assert data.size == 64 * 4096 and np.array_equal(data[5 * 4096 : 6 * 4096], src.array)


def test_bad_model_parameters(kernel):
    with pytest.raises(ValueError, match="cannot create the NVMe model"):
        SimNvme(kernel.heap, blocks=0)
    with pytest.raises(ValueError, match="lba_shift"):
        SimNvme(kernel.heap, lba_shift=13)
