"""``python -m bench.sets build [--only NAME] [--out DIR]``: build the labelled folders."""
from __future__ import annotations

import argparse
import importlib
import time
from collections import Counter
from pathlib import Path

from bench.sets import NAMES, SETS


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.sets", description=__doc__)
    ap.add_argument("command", choices=["build", "list"])
    ap.add_argument("--only", action="append", choices=NAMES, help="build only this set")
    ap.add_argument("--out", type=Path, default=SETS)
    args = ap.parse_args()
    for name in args.only or NAMES:
        mod = importlib.import_module(f"bench.sets.{name}")
        if args.command == "list":
            print(f"{name}: {mod.__doc__.strip().splitlines()[0]}")
            continue
        t0 = time.perf_counter()
        counts = mod.build(args.out / name)
        fmts = Counter(p.suffix.lower() for p in (args.out / name).rglob("*") if p.is_file()
                       and p.name != "SOURCE.txt")
        print(f"{name}: {sum(counts.values())} images, {len(counts)} classes "
              f"({', '.join(f'{k}={v}' for k, v in counts.items())}); formats "
              f"{dict(sorted(fmts.items()))}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
