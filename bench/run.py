"""Run the benchmarks: `python bench/run.py [--quick] [--out bench/results]` (same as `tinyagent bench`)."""
import argparse

from tinyagent.compare.bench import run_bench

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer tokens and repeats, small eval")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args()
    run_bench(args.out, quick=args.quick)
