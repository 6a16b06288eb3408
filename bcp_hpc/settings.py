"""Typed settings of a run configuration: one declaration per key (default, type, units, allowed
values, documentation), used to validate a TOML file once and to document it.

A section is a tuple of :class:`Setting`; a cycle plug-in declares its own keys the same way
(:mod:`bcp_hpc.cycles`).  Errors name the source (file or command line), the ``[section] key``
and what was expected.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from .errors import ConfigError

KINDS = ("str", "path", "paths", "float", "int", "bool", "list[str]", "list[float]", "table")


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    doc: str
    kind: str = ""                  #: one of KINDS; inferred from the default when empty
    units: str = ""                 #: physical units of a number ("" when dimensionless or not a number)
    choices: tuple = ()             #: allowed values (strings)
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    pattern: str = ""               #: regular expression a string must match (e.g. SLURM times)
    pattern_doc: str = ""           #: what the pattern means, for the error message
    #: part of what a checkpoint belongs to (``--resume`` refuses a run where it differs); False for keys
    #: that only steer the computation (iteration limits, output places, starting points)
    defines_problem: bool = True

    def __post_init__(self):
        if not self.kind:
            d = self.default
            kind = ("bool" if isinstance(d, bool) else "int" if isinstance(d, int) else "float"
                    if isinstance(d, float) else "table" if isinstance(d, dict) else
                    "list[float]" if isinstance(d, list) and d and isinstance(d[0], (int, float)) else
                    "list[str]" if isinstance(d, list) else "str")
            object.__setattr__(self, "kind", kind)
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: kind must be one of {KINDS}")

    def expected(self) -> str:
        what = {"str": "a string", "path": "a path (string)", "paths": "a path or a list of paths",
                "float": "a number", "int": "an integer",
                "bool": "true or false", "list[str]": "a list of strings", "list[float]": "a list of numbers",
                "table": "a table"}[self.kind]
        if self.choices:
            what = "one of " + ", ".join(repr(c) for c in self.choices)
        if self.minimum is not None or self.maximum is not None:
            lo = "" if self.minimum is None else f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
            hi = "" if self.maximum is None else f"<= {self.maximum:g}"
            what += " " + " and ".join(x for x in (lo, hi) if x)
        if self.pattern_doc:
            what = self.pattern_doc
        if self.units:
            what += f" in {self.units}"
        return what

    def check(self, value, where: str):
        """The value converted to this setting's type, or a ConfigError naming ``where``."""
        def bad(extra=""):
            raise ConfigError(f"{where} = {value!r}: expected {self.expected()}{extra}")

        k = self.kind
        if k in ("str", "path"):
            if not isinstance(value, str):
                bad()
            if self.choices and value not in self.choices:
                bad()
            if self.pattern and value and not re.fullmatch(self.pattern, value):
                bad()
            return value
        if k == "paths":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                bad()
            return [x for x in items if x]
        if k == "bool":
            if not isinstance(value, bool):
                bad()
            return value
        if k in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                bad()
            if k == "int" and not float(value).is_integer():
                bad()
            v = int(value) if k == "int" else float(value)
            if not math.isfinite(v):
                bad()
            if self.minimum is not None and (v < self.minimum or (self.exclusive_minimum and v == self.minimum)):
                bad()
            if self.maximum is not None and v > self.maximum:
                bad()
            return v
        if k == "list[str]":
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                bad()
            if self.choices:
                for x in value:
                    if x not in self.choices:
                        bad()
            return list(value)
        if k == "list[float]":
            if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                      for x in value):
                bad()
            out = [float(x) for x in value]
            for x in out:
                if (not math.isfinite(x) or (self.minimum is not None and x < self.minimum)
                        or (self.maximum is not None and x > self.maximum)):
                    bad()
            return out
        if not isinstance(value, dict):
            bad()
        return dict(value)


@dataclass(frozen=True)
class Section:
    """A declared section: its settings, or an open table (``open=True``: any key, values checked by
    ``value_kind``) with default entries."""
    name: str
    settings: tuple = ()
    doc: str = ""
    open: bool = False
    value_kind: str = ""            #: open tables: "float" (numbers), "scalar" (number/string/bool), "table"
    defaults: dict = field(default_factory=dict)
    defines_problem: bool = True    #: see :attr:`Setting.defines_problem`

    def problem_values(self, values: dict) -> dict | None:
        """The part of this section's ``values`` that defines the problem (None: nothing)."""
        if not self.defines_problem:
            return None
        if self.open:
            return dict(values)
        keep = {s.name for s in self.settings if s.defines_problem}
        return {k: v for k, v in values.items() if k in keep}

    def default_values(self) -> dict:
        if self.open:
            return dict(self.defaults)
        return {s.name: (list(s.default) if isinstance(s.default, list) else s.default) for s in self.settings}

    def check(self, values: dict, source: str, base_dir: str | None = None) -> dict:
        """Validated and typed copy of ``values`` (a partial table) for this section."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{self.name}] must be a table, got {values!r}")
        out = {}
        if self.open:
            for k, v in values.items():
                where = f"{source}: [{self.name}] {k}"
                if self.value_kind == "float":
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                        raise ConfigError(f"{where} = {v!r}: expected a number")
                    v = float(v)
                elif self.value_kind == "scalar":
                    if not isinstance(v, (int, float, str, bool)):
                        raise ConfigError(f"{where} = {v!r}: expected a number, string or boolean")
                elif self.value_kind == "table" and not isinstance(v, dict):
                    raise ConfigError(f"{where} = {v!r}: expected a table")
                out[k] = v
            return out
        known = {s.name: s for s in self.settings}
        for k, v in values.items():
            if k not in known:
                raise ConfigError(f"{source}: unknown key '{self.name}.{k}' (known in [{self.name}]: {sorted(known)})")
            s = known[k]
            val = s.check(v, f"{source}: [{self.name}] {k}")
            if s.kind == "path":
                val = _resolve(val, base_dir)
            elif s.kind == "paths":
                val = [_resolve(x, base_dir) for x in val]
            out[k] = val
        return out

    def describe(self) -> list:
        """Documentation lines (``docs/configuration.md``)."""
        lines = [f"[{self.name}]" + (f"  # {self.doc}" if self.doc else "")]
        if self.open:
            for k, v in self.defaults.items():
                lines.append(f"{k} = {v!r}")
            return lines
        for s in self.settings:
            lines.append(f"{s.name} = {_toml(s.default)}    # {s.doc}; {s.expected()}")
        return lines


def _resolve(path: str, base_dir: str | None) -> str:
    """``~`` expanded; a relative path relative to ``base_dir`` (the config file's folder) when given."""
    if not path:
        return path
    path = os.path.expanduser(path)
    if base_dir and not os.path.isabs(path):
        path = os.path.normpath(os.path.join(base_dir, path))
    return path


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)
