"""Tests of the benchmark runner, leaderboards and report."""
