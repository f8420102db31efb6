"""``make bench``: Streamboard against the shared reference peers (see docs/benchmarks.md)."""
