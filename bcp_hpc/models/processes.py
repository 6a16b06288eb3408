"""Named processes: each source or sink of a model is written once, as a rate and its effects.

A :class:`Process` has a rate ``r(c, p, f, rates)`` (usually mmol m-3 s-1 of its own currency)
and effects ``{tracer: coefficient}``: the local source-minus-sink term of a tracer is the sum
over processes of ``coefficient * rate``.  Coefficients are numbers, parameter names, or
functions ``(p, f)`` of the parameters and fields.  A rate may use the rates of processes
declared before it (``rates["uptake"]``), which is how, for example, respiration's O2 demand
follows the carbon remineralisation processes.

Rates are written with :mod:`.ad2` operations, so the same function serves the local terms
(values and first and second derivatives with respect to tracers and parameters), the
diagnostics and the budgets (plain NumPy arrays at the current parameter values).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import ad2


@dataclass
class Process:
    name: str
    rate: Callable                  #: (c, p, f, rates) -> AD2 or array per box
    effects: dict                   #: tracer -> number | parameter name | (p, f) -> value
    units: str = "mmol m-3 s-1"
    description: str = ""

    def coefficient(self, tracer: str, p: dict, f: dict):
        coef = self.effects[tracer]
        if isinstance(coef, str):
            return p[coef]
        if callable(coef):
            return coef(p, f)
        return coef


@dataclass
class ProcessList:
    """An ordered set of processes (rates may use those before them)."""
    processes: list = field(default_factory=list)

    def __iter__(self):
        return iter(self.processes)

    def __len__(self):
        return len(self.processes)

    def __getitem__(self, name: str) -> Process:
        for q in self.processes:
            if q.name == name:
                return q
        raise KeyError(f"no process '{name}' (have {self.names})")

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def names(self):
        return [q.name for q in self.processes]

    def rates(self, c: dict, p: dict, f: dict) -> dict:
        """Every process' rate, in declaration order."""
        out = {}
        for q in self.processes:
            out[q.name] = q.rate(c, p, f, out)
        return out

    def local_terms(self, tracers, c: dict, p: dict, f: dict) -> dict:
        """``tracer -> sum of coefficient * rate`` (zero for tracers no process touches)."""
        rates = self.rates(c, p, f)
        terms = {}
        for q in self.processes:
            r = rates[q.name]
            for tracer in q.effects:
                coef = q.coefficient(tracer, p, f)
                if isinstance(coef, (int, float)) and coef == 1:
                    contribution = r
                elif isinstance(coef, (int, float)) and coef == -1:
                    contribution = -r
                else:
                    contribution = coef * r
                terms[tracer] = contribution if tracer not in terms else terms[tracer] + contribution
        for t in tracers:
            if t not in terms:
                terms[t] = np.zeros_like(ad2.value(c[t]), dtype=float)
        return terms

    def check(self, tracers, parameters):
        """Every effect names a tracer of the model and every parameter-name coefficient a parameter."""
        names = [p.name for p in parameters]
        for q in self.processes:
            for tracer, coef in q.effects.items():
                if tracer not in tracers:
                    raise ValueError(f"process '{q.name}' acts on '{tracer}', which is not a tracer of the model "
                                     f"({list(tracers)})")
                if isinstance(coef, str) and coef not in names:
                    raise ValueError(f"process '{q.name}': coefficient '{coef}' is not a parameter ({names})")
        dup = {n for n in self.names if self.names.count(n) > 1}
        if dup:
            raise ValueError(f"processes declared twice: {sorted(dup)}")
