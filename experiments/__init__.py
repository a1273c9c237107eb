"""Benchmark scripts: each writes a markdown + CSV table, a JSON of results and a plot to ``--out``."""
