"""Where a command writes: checked before any work, so a wrong ``--out`` or ``--json`` is a clear
error (exit 2) instead of a traceback after hours of computing."""
from __future__ import annotations

import os

from ..errors import ConfigError

#: commands whose ``--out`` is a directory of results (the others write one file)
DIRECTORY_OUTPUTS = ("run", "invert", "experiment", "report", "plot")


def check_output_directory(path: str, flag: str = "--out"):
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: exists and is not a directory (give a folder for the results)")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(os.path.abspath(parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write there ({parent} is not writable)")


def check_output_file(path: str, flag: str):
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: is a directory, expected a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"{flag} {path}: its folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path}: cannot write there (permission denied)")


def check_outputs(args):
    """Check every output flag of a parsed command line."""
    out = getattr(args, "out", None)
    if out and out != "-":
        if args.command in DIRECTORY_OUTPUTS:
            check_output_directory(out)
        else:
            check_output_file(out, "--out")
    for flag in ("json", "csv", "plot"):
        value = getattr(args, flag, None)
        if value:
            check_output_file(value, f"--{flag}")
    config = getattr(args, "config", None)
    if config and os.path.isdir(config):
        raise ConfigError(f"--config {config}: is a directory, expected a TOML file")
