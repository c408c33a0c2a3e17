"""Benchmark harness: the pipeline against a hand-written DuckDB floor, incrementally, and on
PostgreSQL, on the same generated data (`make bench SIZE=10M`, `python -m bench --help`)."""
