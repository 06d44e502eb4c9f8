"""redleaf_lab.vfio: the VFIO backend of `Device` (real PCI devices behind an IOMMU).

Layers, bottom up: ioctl.py (vfio.h numbers and structures), pci.py (sysfs: BDFs, IOMMU
groups, binding), iova.py (IOVA allocator inside the IOMMU's reach), container.py
(container, group, DMA mappings), device.py (`VfioPci`: regions, BARs, config space,
reset), backend.py (`VfioDevice`, `VfioNvme`: the `Device` a driver domain gets), cli.py
(`redleaf-lab vfio bind|unbind|status|list`). Pick a backend with
`redleaf_lab.devices.open_nvme(kernel, "vfio:BDF")`. Set-up and supported devices:
vfio/README.md. Nothing here is imported by the kernel unless a VFIO device is opened.
"""

from .errors import VfioError

__all__ = ["VfioError"]
