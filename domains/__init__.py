"""Application and service domains (installed as redleaf_lab.domains). Each folder is one
domain with a domain.toml manifest; the kernel's loader discovers them. Never import them
directly: they run only inside the kernel, after the safe-subset check."""
