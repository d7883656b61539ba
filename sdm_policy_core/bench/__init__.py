"""Benchmarks behind `sdm bench`: each runs on a bare checkout and writes machine-readable JSON."""
