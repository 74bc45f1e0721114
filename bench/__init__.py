"""Benchmark of the relay beside this machine's ceilings (issue 5); run `python -m bench`."""
