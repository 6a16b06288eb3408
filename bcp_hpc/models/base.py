"""Declarative tracer models.

A model declares once:

* its tracers (name, units, how each is moved: ``"T"`` transport, ``"sinking"`` by a
  particle operator, ``"none"``);
* its particle operators as ``SinkingSpec``: a base operator built by the operator layer
  for a unit scale and a *scale factor* that depends on parameters (e.g. ``1/b`` for the
  Martin curve, since ``F(b) = F(1)/b`` column by column);
* its local source-minus-sink terms as named processes (:mod:`.processes`: a rate and its
  effects on each tracer, summed), or as one vectorised function ``s(c; p, fields)``, both
  written with :mod:`bcp_hpc.models.ad2` operations;
* its parameters (:class:`~bcp_hpc.models.parameters.ParameterSet`).

The steady state solves ``F(u) = Op u - s(u) = 0``.  All derivatives (Jacobian blocks,
parameter derivatives, second derivatives) are derived by :mod:`bcp_hpc.models.system`;
a new cycle is a new declaration, not a new solver.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .parameters import ParameterSet
from .processes import ProcessList

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
    #: :meth:`bcp_hpc.solvers.steady.SteadyState._limited_step`): for tracers whose sources are not
    #: defined below zero.  O2, kept from zero by its respiration switch, declares the switch only
    #: (docs/solvers.md, "Steps limited box by box")
    positive: bool = False
    #: ``(centre, width)`` in the tracer's units of a saturating switch in its own sources, e.g.
    #: O2's respiration ``0.5 + 0.5 tanh((O2 - 5) / 1)``: Newton's linearisation holds only within
    #: about one width of the centre, so a box near it moves by a limited step (same method)
    switch: tuple | None = None

    def __post_init__(self):
        if self.transport not in TRANSPORTS:
            raise ValueError(f"tracer {self.name}: transport must be one of {TRANSPORTS}")
        if self.transport == "sinking" and not self.sinking:
            raise ValueError(f"tracer {self.name}: a sinking tracer needs a sinking operator key")


@dataclass
class SinkingSpec:
    """``Op = diag(scale(p)) @ base(grid)``; ``base`` comes from the operator layer."""

    #: (grid, rows=None) -> scipy sparse operator (s^-1) for unit scale: all rows, or only ``rows`` (natural
    #: indices, the other rows empty); a ``base`` of the grid alone is built whole and then cut
    base: Callable
    scale: Callable           #: (params dict of AD2/float, fields) -> AD2/float per box

    def rows(self, grid, rows):
        """The unit-scale operator's rows ``rows`` (row-restricted, natural order)."""
        import inspect
        if "rows" in inspect.signature(self.base).parameters:
            return self.base(grid, rows=rows)
        from ..operators.rows import restrict_rows
        return restrict_rows(self.base(grid), rows)


class RebuiltFields(MutableMapping):
    """A model's natural-order fields after :meth:`Model.release_fields`: rebuilt by ``factory`` (the
    same arrays, from the same inputs) when first read, e.g. by the diagnostics, and kept from then on."""

    def __init__(self, factory: Callable):
        self._factory = factory
        self._whole = None

    def _fields(self) -> dict:
        if self._whole is None:
            self._whole = dict(self._factory())
        return self._whole

    def __getitem__(self, key):
        return self._fields()[key]

    def __setitem__(self, key, value):
        self._fields()[key] = value

    def __delitem__(self, key):
        del self._fields()[key]

    def __iter__(self):
        return iter(self._fields())

    def __len__(self):
        return len(self._fields())

    @property
    def held(self) -> bool:
        """Whether the whole fields are in memory."""
        return self._whole is not None


@dataclass
class Model:
    name: str
    tracers: list
    parameters: ParameterSet
    local_terms: Callable | None = None      #: (c: dict, p: dict, fields: dict) -> dict tracer -> AD2/array
    sinking: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)   #: natural-order n-vectors the terms use
    description: str = ""
    variant: dict = field(default_factory=dict)  #: switches actually used (documented in outputs)
    #: first guess of the steady state for nonlinear models: tracer -> value (mmol m-3; 0 if absent)
    initial: dict = field(default_factory=dict)
    #: the sources and sinks as named processes (:class:`~.processes.Process`); when given, the local
    #: terms are their sum
    processes: ProcessList | list | None = None
    #: observables that are sums of tracers, e.g. total DOC: name -> {tracer: coefficient}
    observables: dict = field(default_factory=dict)
    #: builds ``fields`` again from the model's inputs (same arrays): lets a model system drop the
    #: whole fields once it holds its rows (:meth:`release_fields`)
    fields_factory: Callable | None = None

    def __post_init__(self):
        if self.processes is not None:
            if not isinstance(self.processes, ProcessList):
                self.processes = ProcessList(list(self.processes))
            self.processes.check(self.tracer_names, self.parameters)
            if self.local_terms is None:
                procs, names = self.processes, self.tracer_names
                self.local_terms = lambda c, p, f: procs.local_terms(names, c, p, f)
        if self.local_terms is None:
            raise ValueError(f"model {self.name}: declare processes or local_terms")

    def release_fields(self):
        """Drop the whole natural-order fields (n-vectors held on every rank: 168 bytes per box for the
        joint model) once a model system holds its rows of them; they are rebuilt by
        ``fields_factory`` when read again (diagnostics, another model system).  Without a factory
        the fields stay.  Change a model's inputs, not its fields: a change to ``fields`` lasts only
        until the next release."""
        if self.fields_factory is not None:
            self.fields = RebuiltFields(self.fields_factory)

    def combination(self, name: str) -> dict:
        """``{tracer: coefficient}`` of an observable (a tracer itself, or a declared sum of tracers)."""
        if name in self.tracer_names:
            return {name: 1.0}
        if name in self.observables:
            return dict(self.observables[name])
        raise ValueError(f"'{name}' is neither a tracer nor an observable of model {self.name} "
                         f"(tracers {self.tracer_names}, observables {sorted(self.observables)})")

    def observable(self, name: str, state) -> np.ndarray:
        """The observable ``name`` (natural order) of a natural-order state (nt, n)."""
        names = self.tracer_names
        return sum(c * np.asarray(state[names.index(t)]) for t, c in self.combination(name).items())

    def rates(self, state) -> dict:
        """Rate of every process (natural order, current parameter values) at ``state`` (nt, n)."""
        if self.processes is None:
            raise ValueError(f"model {self.name} declares no processes")
        c = {name: np.asarray(state[a]) for a, name in enumerate(self.tracer_names)}
        return self.processes.rates(c, self.parameters.values(), self.fields)

    def budget(self, state, volume) -> dict:
        """Volume integrals (rate units x m3) of each process' effect on each tracer:
        ``{process: {tracer: integral}}`` (natural-order ``state`` and ``volume``)."""
        rates = self.rates(state)
        p = self.parameters.values()
        out = {}
        for q in self.processes:
            out[q.name] = {t: float(np.sum(np.asarray(q.coefficient(t, p, self.fields) * rates[q.name]) * volume))
                           for t in q.effects}
        return out

    @property
    def tracer_names(self):
        return [t.name for t in self.tracers]

    @property
    def nfields(self):
        return len(self.tracers)
