"""`make bench`: run every benchmarks/bench_*.py module's ``run()``, print a table, write results.json."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.harness import BenchResult, own_environment

HERE = Path(__file__).parent


def main(selected: list[str]) -> int:
    dropped = own_environment()
    if dropped:
        print(f"benchmarks use stores of their own: ignoring {', '.join(dropped)}", file=sys.stderr)
    results: list[BenchResult] = []
    for info in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        if selected and not any(s in info.name for s in selected):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        print(f"running {info.name} ...", file=sys.stderr, flush=True)
        results.extend(module.run())
    table = Table(title="digest benchmarks (ratio > 1: digest is better than the naive baseline)")
    for col in ("benchmark", "n", "value", "baseline", "ratio"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, str(r.n), f"{r.value:,.3f} {r.unit}",
                      "" if r.baseline is None else f"{r.baseline:,.3f} {r.unit}",
                      "" if r.ratio is None else f"{r.ratio:,.1f}×")
    Console().print(table)
    out = HERE / "results.json"
    previous = json.loads(out.read_text()) if out.exists() and selected else {}
    previous.update({r.name: r.to_json() for r in results})
    out.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
