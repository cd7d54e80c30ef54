"""Benchmarks: each measured side by side with a naive baseline, reported as ratios (`make bench`)."""
