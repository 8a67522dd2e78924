"""``sd-sim``: the command line. Each subcommand lives in its own module with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

from sd_sim_plugin.errors import SdSimError

# Subcommand name -> module; each module defines add_parser(subparsers) and run(args) -> int.
SUBCOMMANDS: list[str] = ["validate", "train", "ensemble", "generate", "collect", "render", "eval", "demo", "run",
                          "search"]


class _Parser(argparse.ArgumentParser):
    """Argparse with one-line errors and exit code 2 (argparse's default code, without the usage dump)."""

    def error(self, message: str) -> None:  # noqa: D102
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full ``sd-sim`` parser."""
    parser = _Parser(prog="sd-sim", description="Scenario Diffusion traffic generation for MetaDrive.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"sd_sim_plugin.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn user errors into one line with exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SdSimError as exc:
        sys.stderr.write(f"sd-sim {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"sd-sim {args.command}: interrupted; completed work is saved, run again to resume\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
