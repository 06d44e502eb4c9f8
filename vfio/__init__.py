"""VFIO backend for `Device` (installed as redleaf_lab.vfio). Not implemented yet: see
the VFIO issue. The embedded device models are the default."""
