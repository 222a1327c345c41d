"""Benchmarks: side-by-side comparisons reported as ratios (`make bench`, BENCHMARKS.md)."""
