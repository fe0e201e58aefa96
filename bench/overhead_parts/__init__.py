"""Parts of ``bench/overhead.py``: the fake upstream, the floor pass-through, the load
generator (each run as its own process) and the pure statistics and tables."""
