"""Benchmarks (``make bench``): speed targets live here, never in timed unit tests."""
