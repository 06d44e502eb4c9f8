"""The power-cut campaign: 520 random cuts (half of them tearing the write at the cut)
over a recorded workload. After each, the fs domain mounts the disk (replaying its log),
fsck is clean, and the files are exactly those of the last transaction whose commit
point reached the disk: no committed transaction lost, no uncommitted one visible."""

from __future__ import annotations

import random

import numpy as np

from redleaf_lab.rv6img import fsck, mkfs
from redleaf_lab.rv6img.console import Console
from redleaf_lab.rv6img.layout import Superblock

from .conftest import image_of
from .powercut import CutStore, Workload, is_commit, read_tree

BLOCKS = 256
CUTS = 520


def record(kernel, seed: int, fs_image=None):
    image = mkfs(BLOCKS, {"/keep": b"k" * 5000})
    store = CutStore(BLOCKS)
    store.write_many(np.arange(BLOCKS), image)
    kernel.load("membdev", name="rec_bdev", store=store)
    fs = kernel.load(fs_image or "rv6fs", name="rec_fs", bdev=kernel.proxy("rec_bdev"), console=Console())
    store.recording = True
    work = Workload(fs, store, seed)
    work.run(45)
    store.recording = False
    kernel.stop("rec_fs")
    return image, store.events, work


def broken_fs_image(replace: dict[str, tuple[str, str]]):
    """rv6fs with one deliberate bug (module -> (text, replacement)), for proving that
    the campaign catches a file system that is not crash-safe."""
    from redleaf_lab.interfaces.rv6 import Rv6FS
    from redleaf_lab.kernel import loader

    folder = loader.resolve("rv6fs")
    sources = {p.stem: p.read_text() for p in folder.glob("*.py")}
    for module, (old, new) in replace.items():
        assert old in sources[module]
        sources[module] = sources[module].replace(old, new)
    return loader.image_from_sources("rv6fs_broken", sources, "rv6fs", Rv6FS,
                                     {"bdev": None, "console": None}, "tests:/rv6fs_broken")


def campaign(kernel, cuts: int, fs_image=None, seed: int = 1) -> tuple[int, list[str]]:
    """Run `cuts` random power cuts; (cuts checked, failures)."""
    image, events, work = record(kernel, seed=15, fs_image=fs_image)
    logstart = Superblock.read(image).logstart
    commits = [i for i, e in enumerate(events) if is_commit(e, logstart)]
    assert len(commits) > 40 and len(events) > 200
    mount_store = CutStore(BLOCKS)
    kernel.load("membdev", name="cut_bdev", store=mount_store)
    rng = random.Random(seed)
    console = Console()
    fs_loaded = False
    failures: list[str] = []
    checked = 0
    for trial in range(cuts):
        cut = rng.randrange(len(events) + 1)
        tear = trial % 2 == 1 and cut < len(events)
        disk = image.copy()
        for blocks, datas in events[:cut]:
            disk[blocks] = datas
        torn_ok = False
        if tear:
            blocks, datas = events[cut]
            keep = [i for i in range(len(blocks)) if rng.random() < 0.5]
            disk[blocks[keep]] = datas[keep]
            torn_ok = len(keep) == len(blocks)

        def applied(e, cut=cut, torn_ok=torn_ok):
            return e < cut or (e == cut and torn_ok)

        # the last call whose commit reached the disk (calls with no commit of their own
        # follow the one before)
        last = 0
        for j, mark in enumerate(work.marks):
            own = [e for e in commits if (work.marks[j - 1] if j else -1) <= e < mark]
            if own and not applied(own[-1]):
                break
            last = j
        load_disk(mount_store, disk)
        where = f"cut {cut} (tear={tear}), last committed call {last}"
        try:
            if fs_loaded:
                kernel.stop("cut_fs")
                fs = kernel.restart("cut_fs")
            else:
                fs = kernel.load(fs_image or "rv6fs", name="cut_fs",
                                 bdev=kernel.proxy("cut_bdev"), console=console)
                fs_loaded = True
            files, dirs = read_tree(fs)
        except Exception as exc:  # a broken variant may not even mount
            failures.append(f"{where}: {exc!r}"[:300])
            fs_loaded = fs_loaded and kernel.domain("cut_fs").state != "crashed"
            continue
        want = dict(work.snapshots[last])
        want["/keep"] = b"k" * 5000
        if files != want or dirs != work.dir_snapshots[last]:
            failures.append(f"{where}: files differ")
        problems = fsck(image_of(mount_store))
        if problems:
            failures.append(f"{where}: fsck: {problems[:3]}")
        checked += 1
    return checked, failures


def test_power_cut_campaign(big_kernel):
    checked, failures = campaign(big_kernel, CUTS)
    assert failures == []
    assert checked == CUTS


def test_the_campaign_catches_a_file_system_without_recovery(big_kernel):
    broken = broken_fs_image({"rv6fs": ("self.recovered = self._log.recover()",
                                        "self.recovered = 0")})
    _checked, failures = campaign(big_kernel, 150, broken)
    assert failures, "a file system that never replays its log passed the campaign"


def test_the_campaign_catches_a_commit_written_before_its_log(big_kernel):
    broken = broken_fs_image({"log": (
        """        self._cache.write_many([self.start + 1 + i for i in range(len(blocks))], datas)
        self._step("commit", blocks)
        self._write_head(blocks)  # the commit point""",
        """        self._write_head(blocks)
        self._cache.write_many([self.start + 1 + i for i in range(len(blocks))], datas)""")})
    _checked, failures = campaign(big_kernel, 150, broken)
    assert failures, "a log that writes its header first passed the campaign"


def load_disk(store, disk):
    store.recording = False
    store.write_many(np.arange(len(disk)), disk)


def test_a_live_cut_equals_the_replayed_trace(big_kernel):
    """The replay shortcut is sound: a CutStore that really drops writes after N calls
    leaves the same disk as the initial image plus the first N recorded events."""
    image, events, _work = record(big_kernel, seed=15)
    for cut in (7, len(events) // 2, len(events) - 3):
        live = CutStore(BLOCKS, cut_after=cut)
        live.write_many(np.arange(BLOCKS), image)
        name = f"live{cut}"
        big_kernel.load("membdev", name=f"{name}_bdev", store=live)
        fs = big_kernel.load("rv6fs", name=f"{name}_fs", bdev=big_kernel.proxy(f"{name}_bdev"),
                             console=Console())
        live.recording = True
        Workload(fs, live, seed=15).run(45)
        live.recording = False
        big_kernel.stop(f"{name}_fs")
        replay = image.copy()
        for blocks, datas in events[:cut]:
            replay[blocks] = datas
        assert np.array_equal(image_of(live), replay)

