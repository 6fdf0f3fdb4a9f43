"""Benchmark suites: versioned task lists over hashed data manifests, run for many models into one report."""
