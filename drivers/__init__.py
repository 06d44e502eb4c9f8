"""Driver domains (installed as redleaf_lab.drivers). Each folder is one domain with a
domain.toml manifest; the kernel's loader discovers them. Never import them directly."""
