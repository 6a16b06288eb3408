"""Typed model parameters: value, units, description, optimised or fixed, transform, prior, bounds.

A parameter table can be written to and read from TOML::

    [alpha]
    value = 2.0e-6
    units = "s-1"
    description = "uptake scaling"
    optimize = true
    transform = "log"
    bounds = [1e-12, 1e-2]
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ConfigError

TRANSFORMS = ("log", "none")
_KEYS = {"value", "units", "description", "optimize", "transform", "prior", "bounds"}


@dataclass
class Parameter:
    name: str
    value: float
    units: str                  #: physical units ("1" for dimensionless); mandatory
    description: str = ""
    optimize: bool = False
    transform: str = "log"      #: "log" (x = ln p) or "none" (x = p)
    prior: tuple | None = None  #: (mean, sigma) of a Gaussian prior in transformed space, or None (flat)
    bounds: tuple = (-math.inf, math.inf)

    def __post_init__(self):
        if self.units is None or str(self.units).strip() == "":
            raise ConfigError(f"parameter '{self.name}' has no units (use \"1\" for dimensionless)")
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"parameter '{self.name}': transform must be one of {TRANSFORMS}, got '{self.transform}'")
        if self.transform == "log" and not self.value > 0:
            raise ConfigError(f"parameter '{self.name}': log-transformed value must be > 0, got {self.value}")
        self.check_bounds()

    def check_bounds(self, value=None):
        v = self.value if value is None else value
        lo, hi = self.bounds
        if not (lo <= v <= hi) or not np.isfinite(v):
            raise ConfigError(f"parameter '{self.name}' = {v:g} {self.units} is outside its bounds [{lo:g}, {hi:g}]")

    def to_x(self, value=None) -> float:
        v = self.value if value is None else value
        return math.log(v) if self.transform == "log" else float(v)

    def from_x(self, x: float) -> float:
        return math.exp(x) if self.transform == "log" else float(x)


@dataclass
class ParameterSet:
    params: dict = field(default_factory=dict)

    def __init__(self, params=()):
        self.params = {p.name: p for p in params}

    def __getitem__(self, k) -> Parameter:
        return self.params[k]

    def __contains__(self, k):
        return k in self.params

    def __iter__(self):
        return iter(self.params.values())

    def copy(self) -> "ParameterSet":
        return ParameterSet(replace(p) for p in self)

    @property
    def optimized(self) -> list:
        return [p.name for p in self if p.optimize]

    def values(self) -> dict:
        return {p.name: p.value for p in self}

    def get_x(self) -> np.ndarray:
        return np.array([self[n].to_x() for n in self.optimized])

    def set_x(self, x, check=True):
        for n, xi in zip(self.optimized, x):
            v = self[n].from_x(float(xi))
            lo, hi = self[n].bounds
            # a bound reached through exp(log(bound)) may differ from it by round-off
            if lo < v * (1 + 1e-12) and v < lo:
                v = lo
            if hi > v * (1 - 1e-12) and v > hi:
                v = hi
            if check:
                self[n].check_bounds(v)
            self[n].value = v

    def set(self, **values):
        for k, v in values.items():
            if k not in self.params:
                raise ConfigError(f"unknown parameter '{k}' (known: {sorted(self.params)})")
            self.params[k].check_bounds(v)
            self.params[k].value = float(v)

    # ------------------------------------------------------------- TOML
    def to_toml(self) -> str:
        lines = []
        for p in self:
            lines.append(f"[{p.name}]")
            lines.append(f"value = {p.value!r}")
            lines.append(f"units = {_q(p.units)}")
            lines.append(f"description = {_q(p.description)}")
            lines.append(f"optimize = {'true' if p.optimize else 'false'}")
            lines.append(f"transform = {_q(p.transform)}")
            if p.prior is not None:
                lines.append(f"prior = [{p.prior[0]!r}, {p.prior[1]!r}]")
            lo, hi = p.bounds
            if math.isfinite(lo) or math.isfinite(hi):
                lines.append(f"bounds = [{_f(lo)}, {_f(hi)}]")
            lines.append("")
        return "\n".join(lines)

    @classmethod
    def from_toml(cls, text: str, source: str = "<toml>") -> "ParameterSet":
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML ({exc})") from exc
        return cls.from_dict(d, source)

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> "ParameterSet":
        out = []
        for name, spec in d.items():
            if not isinstance(spec, dict):
                raise ConfigError(f"{source}: parameter '{name}' must be a table")
            unknown = set(spec) - _KEYS
            if unknown:
                raise ConfigError(f"{source}: parameter '{name}' has unknown key(s) {sorted(unknown)} (known: {sorted(_KEYS)})")
            if "units" not in spec:
                raise ConfigError(f"{source}: parameter '{name}' has no units")
            if "value" not in spec:
                raise ConfigError(f"{source}: parameter '{name}' has no value")
            b = spec.get("bounds", [-math.inf, math.inf])
            out.append(Parameter(name=name, value=float(spec["value"]), units=str(spec["units"]),
                                 description=spec.get("description", ""), optimize=bool(spec.get("optimize", False)),
                                 transform=spec.get("transform", "log"),
                                 prior=tuple(spec["prior"]) if "prior" in spec else None,
                                 bounds=(float(b[0]), float(b[1]))))
        return cls(out)

    def update_from(self, other: "ParameterSet | dict", source: str = "<config>"):
        """Override values/flags from a (partial) table; unknown names are an error."""
        items = other.items() if isinstance(other, dict) else ((p.name, p) for p in other)
        for name, spec in items:
            if name not in self.params:
                raise ConfigError(f"{source}: unknown parameter '{name}' (known: {sorted(self.params)})")
            p = self.params[name]
            if isinstance(spec, Parameter):
                self.params[name] = replace(spec)
                continue
            unknown = set(spec) - _KEYS
            if unknown:
                raise ConfigError(f"{source}: parameter '{name}' has unknown key(s) {sorted(unknown)}")
            if "units" in spec and spec["units"] != p.units:
                raise ConfigError(f"{source}: parameter '{name}' must be in {p.units}, got {spec['units']}")
            for k in ("optimize", "transform", "description"):
                if k in spec:
                    setattr(p, k, spec[k])
            if "prior" in spec:
                p.prior = tuple(spec["prior"])
            if "bounds" in spec:
                p.bounds = (float(spec["bounds"][0]), float(spec["bounds"][1]))
            if "value" in spec:
                p.check_bounds(float(spec["value"]))
                p.value = float(spec["value"])


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _f(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))
