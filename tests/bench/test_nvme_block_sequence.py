"""`bench nvme` gives every path the same block sequence: the C loop's own.

The C host loop picks its blocks itself (xorshift64 over the whole namespace for random
rows, from block 0 for sequential ones); `bench.block_sequence` reproduces it, checked
here against what the C loop really writes on the model. Then `measure()` must hand
each Python path (direct, proxy, shadow) that same sequence, and `_run_python` must
submit exactly it. The old benchmark gave the Python paths one fixed batch of blocks
(a single block at batch 1) while the C loop walked the namespace. No timing is checked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from redleaf_lab.bench import block_sequence, nvme
from redleaf_lab.devices.sim_nvme import SimNvme, host_bench_bytes
from redleaf_lab.idl import gates
from redleaf_lab.kernel.kernel import Kernel


@pytest.mark.parametrize(("count", "lanes", "seed"), [(1, 1024, 1), (5000, 1024, 1),
                                                      (4097, 7, 12345), (300, 1, 2)])
def test_the_numpy_xorshift_stream_is_the_step_by_step_one(count: int, lanes: int,
                                                           seed: int) -> None:
    fast = block_sequence.xorshift_stream(count, seed, lanes=lanes)
    slow = np.array(block_sequence.xorshift_reference(count, seed), dtype=np.uint64)
    assert np.array_equal(fast, slow)


@pytest.mark.parametrize(("random", "nlb"), [(True, 1), (False, 1), (True, 4), (False, 4)])
def test_the_sequence_is_what_the_c_loop_writes(kernel: Kernel, random: bool,
                                                nlb: int) -> None:
    # depth 1: every command uses buffer 0, which holds the Identify data the loop read
    # first, so each block the loop writes (the first of each command) turns non-zero
    nsze, commands = 512, 40
    dev = SimNvme(kernel.heap, blocks=nsze, name="nvme-seq")
    try:
        need = host_bench_bytes(1, nlb)
        mem = dev.dma_alloc(need)
        assert dev.bench_host(mem.iova, need, 1, nlb, commands, True, random,
                              seed=block_sequence.C_SEED) >= 0
        written = set(np.flatnonzero(dev.media().reshape(nsze, -1).any(axis=1)).tolist())
        dev.dma_free(mem.handle)
    finally:
        dev.close()
    lbas = block_sequence.command_lbas(commands, random, nlb, nsze)
    assert written == set(lbas.tolist())
    if not random:
        assert lbas[:3].tolist() == [0, nlb, 2 * nlb]


def test_run_python_submits_the_sequence_in_order(kernel: Kernel) -> None:
    dev = SimNvme(kernel.heap, blocks=1024, name="nvme-order")
    try:
        kernel.load("nvme", device=dev)
        impl = kernel.domain("nvme").impl
        seen: list[np.ndarray] = []

        class Recorder:
            def submit_and_poll(self, submit: Any, collect: Any, write: bool) -> Any:
                seen.append(submit.get("block").astype(np.int64))
                return impl.submit_and_poll(submit, collect, write)

        blocks = block_sequence.request_blocks(4096, True, 1024)
        ios, _secs = nvme._run_python(Recorder(), 8, blocks, False, 0.0)  # 16 batches
        assert ios == 16 * 8 == sum(len(s) for s in seen)
        assert np.array_equal(np.concatenate(seen), blocks[:ios])
        kernel.stop("nvme")
    finally:
        dev.close()


def test_every_path_gets_the_c_loops_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    python_runs: list[tuple[str, int, np.ndarray]] = []
    c_runs: list[tuple[int, int, bool, int]] = []

    def fake_python(bdev: Any, batch: int, blocks: np.ndarray, write: bool,
                    seconds: float) -> tuple[int, float]:
        python_runs.append((type(bdev).__name__, batch, blocks))
        return 1000, 1.0

    def fake_c(kernel: Any, threaded: bool, batch: int, nlb: int, random: bool, write: bool,
               seconds: float, nsze: int) -> tuple[int, float]:
        c_runs.append((batch, nlb, random, nsze))
        return 1000, 1.0

    monkeypatch.setattr(nvme, "_run_python", fake_python)
    monkeypatch.setattr(nvme, "_run_c", fake_c)
    rows = nvme.measure(seconds=0.01, batches=(1, 32), rounds=1)
    nsze = rows[0]["namespace_blocks"]
    assert nsze == nvme.BLOCKS and {n for *_rest, n in c_runs} == {nsze}
    cases = [(w, b) for b in (1, 32) for w in nvme.WORKLOADS_4K]
    cases += [("128k-seqread", 32), ("128k-seqwrite", 32)]
    per_case = 5 if gates.available() else 3  # direct, proxy, shadow (+ both on Python)
    assert len(python_runs) == per_case * len(cases) and len(c_runs) == len(cases)
    for i, (workload, batch) in enumerate(cases):
        paths = python_runs[per_case * i:per_case * i + per_case]  # this case's paths
        blocks = paths[0][2]
        assert all(b == batch and np.array_equal(seq, blocks) for _name, b, seq in paths)
        big = workload.startswith("128k")
        assert c_runs[i][:3] == (1 if big else batch, 32 if big else 1, "rand" in workload)
        # the C loop's own blocks, request by request
        expected = block_sequence.request_blocks(len(blocks), "rand" in workload, nsze,
                                                 nlb=32 if big else 1)
        assert np.array_equal(blocks, expected)
        if "rand" in workload:  # uniform over the whole namespace, not a fixed batch
            assert blocks.min() < nsze // 64 and blocks.max() > nsze - nsze // 64
            assert len(np.unique(blocks)) > nsze // 2
        else:
            assert np.array_equal(blocks[:64], np.arange(64))
