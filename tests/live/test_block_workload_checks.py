"""The block workload's read and media checks (what the demo reports) catch broken drivers.

Three deliberately broken membdev drivers live in tests/support/domains: one whose read
does nothing, one whose read returns the next block's data, one that acknowledges
writes and drops them. Each runs a fixed number of batches (no timing) in the calling
thread, through the same shadow and checks as the demo; the working driver, in every
mode, must come out clean. On the old workload (reads back into the buffers that still
held the expected stamps) the no-read driver reported 0 wrong reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from redleaf_lab.kernel.kernel import Kernel
from redleaf_lab.live.block_pattern import POISON_BYTE, WriteRecord, block_contents, poison
from redleaf_lab.live.workloads import BlockWorkload

BROKEN = Path(__file__).parents[1] / "support" / "domains"


def run_workload(kernel: Kernel, driver: str | Path, mode: str, batches: int = 12
                 ) -> dict[str, int]:
    workload = BlockWorkload(kernel, blocks=256, batch=16, driver=driver)
    try:
        workload.mode = mode
        workload.run(batches=batches)
        assert workload.errors == 0, workload.last_error
        return workload.check()
    finally:
        workload.close()


@pytest.mark.parametrize("mode", ["mixed", "write", "read"])
def test_a_working_driver_is_clean_in_every_mode(kernel: Kernel, mode: str) -> None:
    check = run_workload(kernel, "membdev", mode)
    assert check["wrong_reads"] == 0 and check["lost_writes"] == 0 and check["bad_blocks"] == 0
    assert (check["acknowledged_blocks"] > 0) == (mode != "read")


@pytest.mark.parametrize("mode", ["mixed", "read"])
def test_a_driver_whose_read_does_nothing_is_caught(kernel: Kernel, mode: str) -> None:
    check = run_workload(kernel, BROKEN / "membdev_noread", mode)
    reads = 12 * 16 if mode == "read" else 6 * 16
    assert check["wrong_reads"] == reads  # every block read: the poison came back
    assert check["lost_writes"] == 0


def test_a_driver_that_returns_another_blocks_data_is_caught(kernel: Kernel) -> None:
    check = run_workload(kernel, BROKEN / "membdev_otherblock", "mixed")
    assert check["wrong_reads"] == 6 * 16  # every block read held its neighbour's data
    assert check["lost_writes"] == 0 and check["bad_blocks"] == 0  # the media is right


def test_a_driver_that_drops_writes_is_caught(kernel: Kernel) -> None:
    check = run_workload(kernel, BROKEN / "membdev_dropwrites", "mixed")
    assert check["wrong_reads"] == 6 * 16  # zeros where an acknowledged write should be
    assert check["lost_writes"] == check["acknowledged_blocks"] == 6 * 16
    assert check["bad_blocks"] == 6 * 16


def test_the_poison_is_no_block_a_write_produces() -> None:
    record = WriteRecord(8)
    record.sending(np.arange(8), 1)
    record.acknowledged(np.arange(8), 1)
    assert not record.wrong_blocks(np.arange(8), block_contents(np.arange(8), 1).view(np.uint8)
                                   ).any()
    assert record.wrong_blocks(np.arange(8), poison(8)).all()
    assert np.all(poison(1) == POISON_BYTE)
    # a version newer than any sent, an older one, and a one-word change are all wrong
    newer = block_contents(np.arange(8), 2).view(np.uint8)
    assert record.wrong_blocks(np.arange(8), newer).all()
    flipped = block_contents(np.arange(8), 1)
    flipped[:, 300] ^= np.uint64(1)
    assert record.wrong_blocks(np.arange(8), flipped.view(np.uint8)).all()
    assert record.wrong_blocks(np.arange(8), np.zeros((8, 4096), np.uint8)).all()  # lost
