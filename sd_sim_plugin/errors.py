"""Errors that reach users as one clear line (the CLI prints them and exits with code 2)."""


class SdSimError(Exception):
    """A problem with the user's input or environment, described in one line: what is wrong and where."""
