"""Benchmarks: cross-domain call cost and friends, each with its baseline in one run."""
