"""Application and service domains (installed as redleaf_lab.domains). Each folder is one
domain with a domain.toml manifest; the kernel's loader discovers them. Never import them
directly: they run only inside the kernel, after the safe-subset check.

Trusted code that imports a domain's pure modules as plain Python (tests, the grader)
gets the domain libraries those modules import (kernel/library_imports.py)."""

from redleaf_lab.kernel import library_imports

library_imports.install()

