"""Benchmarks: each prints a figure against a plain baseline measured in the same run."""
