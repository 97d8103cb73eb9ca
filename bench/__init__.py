"""Benchmarks of hubsettings-operator against a real PostgreSQL and a real kube-apiserver (issue 9).

`python -m bench` (or `make bench`) runs every benchmark with its baseline, prints one table, and writes
`bench/results.json` and `bench/latency.png`; `python -m bench --smoke` runs each benchmark once with tiny
sizes (used by `tests/e2e/test_bench_smoke.py`). Numbers are reported against targets, never asserted.
"""
