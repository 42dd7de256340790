"""Foundation benchmark: raw and uniform (8/4/2 bits) on both reference models at their default split.

    python benchmarks/foundation.py [--samples 10000]

Writes benchmarks/results/foundation.json (+ .csv, .png) and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from splitcodec.cli import console, records_table
from splitcodec.eval import evaluate, plot_rate_accuracy, run_meta, save_records

RESULTS = Path(__file__).parent / "results" / "foundation.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    records = []
    for model in ("ref-resnet", "ref-darknet"):
        records += evaluate(model, codecs=["uniform:bits=8,4,2", "raw"], samples=args.samples)
    console.print(records_table(records, f"uniform and raw at the default split ({args.samples} test images)"))
    save_records(records, args.out, run_meta(benchmark="foundation", samples=args.samples))
    plot_rate_accuracy(records, args.out.with_suffix(".png"), title="uniform vs raw, default splits")


if __name__ == "__main__":
    main()
