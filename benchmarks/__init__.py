"""Benchmark harness: data, training loop, prediction, scoring, reports."""
