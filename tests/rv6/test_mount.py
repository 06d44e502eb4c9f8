"""Malformed images are refused at mount with a clear error; the caller and the kernel
go on (no crash, nothing leaked)."""

from __future__ import annotations

import struct

import pytest

from redleaf_lab import DomainLoadError
from redleaf_lab.rv6img import mkfs
from redleaf_lab.rv6img.console import Console
from redleaf_lab.rv6img.layout import Superblock

from .conftest import store_of


def mount(kernel, image, device_blocks=None):
    if device_blocks is not None:
        image = image[:device_blocks]
    kernel.load("membdev", store=store_of(image))
    return kernel.load("rv6fs", bdev=kernel.proxy("membdev"), console=Console())


def test_a_good_image_mounts(big_kernel):
    fs = mount(big_kernel, mkfs(256, {"/x": b"1"}))
    assert fs.open(1, "/x", 0) == 0


@pytest.mark.parametrize("what, message", [
    ("magic", "bad magic 0x0"),
    ("size", "does not fit the device"),
    ("log", "log header claims 999 blocks but the log holds 48"),
    ("logblock", "log header names block 1"),
    ("nblocks", "sizes do not add up"),
    ("root", "is not a directory"),
    ("bitmap", "does not follow the inode blocks"),
])
def test_malformed_images_are_refused_with_a_clear_error(big_kernel, what, message):
    image = mkfs(256, {"/x": b"1"})
    s = Superblock.read(image)
    if what == "magic":
        struct.pack_into("<I", image[1], 0, 0)
    elif what == "size":
        struct.pack_into("<I", image[1], 4, 100_000)
    elif what == "log":
        struct.pack_into("<I", image[s.logstart], 0, 999)
    elif what == "logblock":
        struct.pack_into("<II", image[s.logstart], 0, 1, 1)
    elif what == "nblocks":
        struct.pack_into("<I", image[1], 8, 7)
    elif what == "root":
        image[s.inodestart, 128:130] = 2  # inode 1 becomes a plain file
    elif what == "bitmap":
        struct.pack_into("<I", image[1], 28, s.bmapstart + 1)
    with pytest.raises(DomainLoadError, match=message):
        mount(big_kernel, image)
    assert big_kernel.domain("rv6fs").state == "crashed"
    assert big_kernel.proxy("membdev").num_blocks() == 256  # the caller's other domains live


def test_an_image_bigger_than_the_device_is_refused(big_kernel):
    with pytest.raises(DomainLoadError, match="does not fit the device"):
        mount(big_kernel, mkfs(256, {}), device_blocks=200)
