"""Declarative tracer models.

A model declares once:

* its tracers (name, units, how each is moved: ``"T"`` transport, ``"sinking"`` by a
  particle operator, ``"none"``);
* its particle operators as ``SinkingSpec``: a base operator built by the operator layer
  for a unit scale and a *scale factor* that depends on parameters (e.g. ``1/b`` for the
  Martin curve, since ``F(b) = F(1)/b`` column by column);
* its local source-minus-sink terms ``s(c; p, fields)`` as a vectorised function written
  with :mod:`bcp_hpc.models.ad2` operations;
* its parameters (:class:`~bcp_hpc.models.parameters.ParameterSet`).

The steady state solves ``F(u) = Op u - s(u) = 0``.  All derivatives (Jacobian blocks,
parameter derivatives, second derivatives) are derived by :mod:`bcp_hpc.models.system`;
a new cycle is a new declaration, not a new solver.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .parameters import ParameterSet

TRANSPORTS = ("T", "sinking", "none")


@dataclass
class Tracer:
    name: str
    units: str                      #: e.g. "mmol m-3"
    transport: str = "T"            #: "T", "sinking" or "none"
    sinking: str | None = None      #: key into Model.sinking when transport == "sinking"
    #: the structured solver may eliminate this tracer with a column-local approximation of its
    #: block (exact for particles; for a fast-decaying dissolved pool the horizontal transport is
    #: neglected in the approximation and corrected by the outer iteration)
    eliminate: bool = False
    description: str = ""
    #: Newton keeps the tracer positive where it is (steps shortened box by box, see
    #: :meth:`bcp_hpc.solvers.steady.SteadyState._keep_positive`); for switches such as O2's
    positive: bool = False

    def __post_init__(self):
        if self.transport not in TRANSPORTS:
            raise ValueError(f"tracer {self.name}: transport must be one of {TRANSPORTS}")
        if self.transport == "sinking" and not self.sinking:
            raise ValueError(f"tracer {self.name}: a sinking tracer needs a sinking operator key")


@dataclass
class SinkingSpec:
    """``Op = diag(scale(p)) @ base(grid)``; ``base`` comes from the operator layer."""

    base: Callable            #: grid -> scipy sparse operator (s^-1) for unit scale
    scale: Callable           #: (params dict of AD2/float, fields) -> AD2/float per box


@dataclass
class Model:
    name: str
    tracers: list
    parameters: ParameterSet
    local_terms: Callable                    #: (c: dict, p: dict, fields: dict) -> dict tracer -> AD2/array
    sinking: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)   #: natural-order n-vectors the terms use
    description: str = ""
    variant: dict = field(default_factory=dict)  #: switches actually used (documented in outputs)
    #: first guess of the steady state for nonlinear models: tracer -> value (mmol m-3; 0 if absent)
    initial: dict = field(default_factory=dict)

    @property
    def tracer_names(self):
        return [t.name for t in self.tracers]

    @property
    def nfields(self):
        return len(self.tracers)
