"""Run every ``benchmarks/<name>.py`` module's ``main()`` in turn (``make bench``), each in its own process.

A fresh process per module keeps MetaDrive's one-engine-per-process rule and keeps timings independent.
``python -m benchmarks NAME ...`` runs only the named modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def modules() -> list[str]:
    """Names of the benchmark modules, in name order."""
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    """Run the requested (default: all) benchmark modules; exit non-zero if any failed."""
    names = list(argv if argv is not None else sys.argv[1:]) or modules()
    unknown = sorted(set(names) - set(modules()))
    if unknown:
        sys.stderr.write(f"benchmarks: unknown module(s) {', '.join(unknown)}; have {', '.join(modules())}\n")
        return 2
    failed = []
    for name in names:
        print(f"=== benchmarks.{name} ===", flush=True)
        code = subprocess.call([sys.executable, "-c", f"import sys, benchmarks.{name} as m; sys.exit(m.main())"],
                               cwd=Path(__file__).resolve().parents[1])
        if code:
            failed.append(f"{name} (exit {code})")
    if failed:
        sys.stderr.write(f"benchmarks failed: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
