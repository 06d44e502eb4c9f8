"""A second module of the domain."""

POLY = 0xEDB88320
