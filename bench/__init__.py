"""Benchmark of the relay beside this machine's ceilings; run `python -m bench`."""
