"""Rv6's trusted side: image tools (mkfs, fsck) and the glue that boots Rv6.

Why here and not in images/ (as the issue suggested): images/ is not an installed
package (setup.py maps only drivers/, domains/ and vfio/ into redleaf_lab), and
`redleaf-lab mkfs`/`fsck`, the benchmark, the Jupyter magic and the tests all import
these tools from an installed redleaf_lab. The QEMU guest builder stays in images/.
"""

from .fsck import fsck
from .mkfs import default_files, mkfs, read_image, write_image

__all__ = ["default_files", "fsck", "mkfs", "read_image", "write_image"]
