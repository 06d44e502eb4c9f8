"""Domain interfaces only (RedLeaf interface/): small, one file per interface."""
