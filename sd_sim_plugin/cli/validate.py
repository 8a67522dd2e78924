"""``sd-sim validate SPEC...``: check scenario specs; errors name the file, line and field path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sd_sim_plugin.errors import SdSimError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``validate``."""
    p = subparsers.add_parser("validate", help="check scenario spec files (YAML)",
                              description="Check scenario specs. Errors give file:line: field: problem.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec file(s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate each spec; print one line per spec; exit 2 if any is invalid."""
    from sd_sim_plugin.specs.load import load_spec
    from sd_sim_plugin.specs.space import open_dimensions

    errors = []
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SdSimError as exc:
            errors.append(str(exc))
            continue
        real = spec.map.scenarionet
        if real is not None and not Path(real.file).is_file():
            errors.append(f"{path}: map.scenarionet.file: no such file {real.file}")
            continue
        dims = open_dimensions(spec)
        print(f"ok {path}: {spec.name}: {len(spec.agents)} key agent(s), {len(dims)} open dimension(s)"
              + (f" ({', '.join(d.name for d in dims)})" if dims else ""))
    if len(errors) == 1:
        raise SdSimError(errors[0])
    for line in errors:
        sys.stderr.write(f"sd-sim validate: error: {line}\n")
    return 2 if errors else 0
