"""otedi benchmarks: `make bench` runs `python -m benchmarks.run` (see benchmarks/README.md)."""
