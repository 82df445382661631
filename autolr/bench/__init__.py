"""Benchmarks (``autolr bench``): throughput, load, range-test rules, per-family LR bounds, reference verdicts."""
