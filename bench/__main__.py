"""`python -m bench [--smoke] [--only IDS] [--out-dir DIR]`: run the benchmarks, print the table."""

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
