"""Run configuration (TOML): one file describes a run; CLI flags override; the resolved
configuration is stored with the results.  Unknown sections and keys, wrong types and values out
of range are errors naming the file and the key.

The keys, their defaults, units and meaning are declared in
:mod:`bcp_hpc.experiments.description` (every run) and in each cycle's ``config`` module (its
``[model]`` switches and sections); ``docs/configuration.md`` lists them all.
"""
from __future__ import annotations

from .experiments.description import RunDescription


def load_config(path: str | None = None, overrides: dict | None = None) -> dict:
    """The validated configuration as a plain dict (defaults < ``path`` < ``overrides``)."""
    return RunDescription.load(path, overrides).to_dict()
