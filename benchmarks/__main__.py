"""Command line: ``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .catalog import WORKLOADS
from .harness import Settings
from .plots import write_plots
from .results import write_json
from .suite import run_suite, select
from .table import format_table
from .workloads import DEFAULT_SEED, KEY_MODES

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="10^4/10^5 records, 3 runs: under a minute"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only these workloads (see --list)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for latest.json and the PNGs (default: %(default)s)",
    )
    parser.add_argument(
        "--keys",
        choices=KEY_MODES,
        default="pool",
        help="keys from a pool of 10,000 entity ids, or all unique",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(
            quick=True,
            runs=3,
            sizes=(10**4, 10**5),
            case_budget_s=0.75,
            key_mode=args.keys,
            seed=args.seed,
        )
    return Settings(
        quick=False,
        runs=5,
        sizes=(10**5, 10**6),
        case_budget_s=6.0,
        warmup_records=10_000,
        key_mode=args.keys,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for workload in WORKLOADS:
            flag = " (full run only)" if workload.full_only else ""
            print(f"{workload.name:<14} {workload.description}{flag}")
        return 0
    settings = settings_for(args)
    workloads, notes = select(args.only, settings)
    document, results = run_suite(settings, workloads)
    document["left_out"] = notes
    print(format_table(results))
    for note in notes:
        print(f"(not run: {note})")
    path = args.out / "latest.json"
    write_json(path, document)
    print(f"\nwrote {path}", file=sys.stderr)
    if not args.no_plots:
        for png in write_plots(results, args.out):
            print(f"wrote {png}", file=sys.stderr)
    print(f"elapsed {document['elapsed_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
