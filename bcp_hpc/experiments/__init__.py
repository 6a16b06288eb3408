"""Experiments: the run description, the one runner every cycle uses, twin data, single inversions."""
