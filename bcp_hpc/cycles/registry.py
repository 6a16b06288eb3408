"""The cycle registry: every biogeochemical cycle is a plug-in package found here by name.

A cycle package defines ``CYCLE = Cycle(...)`` in its ``__init__.py``.  Found automatically:

* the packages inside ``bcp_hpc/cycles/`` (phosphorus, pco, ...);
* every package in the folders of ``BCP_CYCLE_PATH`` (``os.pathsep``-separated; a folder may also
  be a cycle package itself), e.g. a cycle a user keeps beside their data;
* Python entry points of the group ``bcp_hpc.cycles`` (installed plug-ins).

The CLI's ``--cycle`` choices, the configuration schema, the experiment runner, ``bcp-hpc
experiment`` and ``bcp-hpc slurm render`` all read this registry, so a new cycle touches no file
outside its own folder.  Hooks that need later stages (diagnostics, experiments, report lines) are
named as ``"module:function"`` relative to the cycle's package and imported only when used.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConfigError

log = logging.getLogger(__name__)
PATH_VARIABLE = "BCP_CYCLE_PATH"
ENTRY_POINT_GROUP = "bcp_hpc.cycles"


@dataclass(frozen=True)
class Experiment:
    """An experiment of a cycle: ``bcp-hpc experiment NAME``."""
    name: str
    help: str
    entry: str                         #: "module:function" (run, out_dir, resume) -> result
    report: str                        #: "module:function" (result, out_dir, json_path): files and printout
    #: "module:function" (run, out_dir) -> result or None: merge the tasks of a SLURM job array (``--gather``)
    gather: str = ""
    default_out: str = ""
    #: a SLURM job array over a list setting, one value per task: (section, key, the flag that passes one value,
    #: prefix of each task's output folder), e.g. ("experiment", "sigma2_values", "--sigma2", "s2_")
    slurm_array: tuple = ()
    #: flags every task of the array passes, e.g. ("--no-sensitivity-runs",)
    slurm_task_flags: tuple = ()
    #: the run flags beyond the common ones the experiment takes: "--sigma2" ([experiment] sigma2_values),
    #: "--no-sensitivity-runs", "--products" ([joint] npp_products)
    flags: tuple = ()


@dataclass
class Cycle:
    """What a cycle declares.  The callables take the experiment runner's ``Setup``
    (:class:`bcp_hpc.experiments.runner.Setup`: ``run``, ``world``, ``grid``, ``dgrid``, ``product``,
    ``real_observations``).

    ``hooks``: a module (conventionally the cycle's ``run.py``) whose functions ``build``, ``truth``,
    ``twin_observed`` and, if present, ``real_observations`` and ``start`` fill the fields not given;
    ``config``: a module whose ``MODEL_SETTINGS`` and ``SECTIONS`` fill ``model_settings`` and
    ``sections``."""

    name: str                          #: the registry key (``[model] cycle``, ``--cycle``)
    title: str
    tracers: tuple
    build: Callable | None = None      #: (setup, product) -> Model, parameters from the cycle's defaults
    truth: Callable | None = None      #: (setup, model) -> {parameter: value} of a twin experiment's truth
    twin_observed: Callable | None = None   #: (setup, truth_state) -> [(tracer, noise std, tracer units)]
    #: "module:function" (setup, model, state) -> dict of totals and maps, ``state`` the whole
    #: natural-order state; called on rank 0, and every rank receives the result
    diagnostics: str = "diagnostics:run_diagnostics"
    #: the diagnostics hook has collective steps (e.g. an adjoint solve): it is called on every rank,
    #: ``state`` is None except on rank 0 and only rank 0's result counts
    diagnostics_collective: bool = False
    model_settings: tuple = ()         #: :class:`~bcp_hpc.settings.Setting` of ``[model]`` for this cycle
    sections: tuple = ()               #: the cycle's own config sections (:class:`~bcp_hpc.settings.Section`)
    #: (setup) -> ({tracer: whole natural-order values} or None for a twin, info dict); called on rank 0,
    #: every rank receives the info; ``info["tracers"][name]``, what
    #: :func:`~bcp_hpc.data.observations.read_observation` returned, lets the other ranks read their boxes
    #: of a `data build` file by hyperslab (without it rank 0 sends them)
    real_observations: Callable | None = None
    start: Callable | None = None      #: (setup, x_true) -> transformed start parameters, or None (model's)
    summary: str = ""                  #: "module:function" (payload) -> list of report lines
    experiments: tuple = ()
    main_experiment: str = ""          #: what ``bcp-hpc run`` runs after the circulation check ("" = invert)
    tao_defaults: dict = field(default_factory=dict)
    #: forcing the cycle's model needs from its world (npp, po4, temperature, salinity, silicate,
    #: piston_velocity, sea_level_pressure, pme): a world without stand-ins must have each
    forcing: tuple = ("npp", "po4", "temperature")
    result_file: str = "result.json"
    state_file: str = "state.h5"
    slurm_aliases: dict = field(default_factory=dict)   #: extra job kinds -> "invert" (e.g. joint-invert)
    package: str = ""                  #: set by the registry
    hooks: object = None
    config: object = None

    def __post_init__(self):
        for name in ("build", "truth", "twin_observed", "real_observations", "start"):
            if getattr(self, name) is None and self.hooks is not None:
                setattr(self, name, getattr(self.hooks, name, None))
        if self.config is not None:
            self.model_settings = self.model_settings or tuple(getattr(self.config, "MODEL_SETTINGS", ()))
            self.sections = self.sections or tuple(getattr(self.config, "SECTIONS", ()))
        missing = [n for n in ("build", "truth", "twin_observed") if getattr(self, n) is None]
        if missing:
            raise ConfigError(f"cycle {self.name}: no {', '.join(missing)} (give them, or hooks=a module with them)")

    def hook(self, spec: str):
        """The function named ``"module:function"`` in this cycle's package."""
        module, _, func = spec.partition(":")
        return getattr(importlib.import_module(f"{self.package}.{module}"), func)

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise ConfigError(f"cycle {self.name} has no experiment '{name}' (has: {[e.name for e in self.experiments]})")


_REGISTRY: dict = {}
_LOADED = False


def register(cycle: Cycle, package: str = ""):
    """Add ``cycle`` (``package``: the module its hooks are relative to)."""
    if package:
        cycle.package = package
    old = _REGISTRY.get(cycle.name)
    if old is not None and old.package != cycle.package:
        raise ConfigError(f"two cycles are named '{cycle.name}': {old.package} and {cycle.package}")
    _REGISTRY[cycle.name] = cycle


def _register_module(module):
    cycle = getattr(module, "CYCLE", None)
    if isinstance(cycle, Cycle):
        register(cycle, module.__name__)


def _load_folder(folder: str):
    """A cycle package at ``folder`` (a directory with ``__init__.py``) under a private module name."""
    name = "bcp_hpc_cycle_" + "".join(ch if ch.isalnum() else "_" for ch in os.path.abspath(folder))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a broken plug-in must name itself
        del sys.modules[name]
        raise ConfigError(f"cycle plug-in {folder}: {type(exc).__name__}: {exc}") from exc
    return module


def _discover():
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    here = os.path.dirname(__file__)
    for info in pkgutil.iter_modules([here]):
        if info.ispkg:
            _register_module(importlib.import_module(f"{__package__}.{info.name}"))
    for entry in filter(None, os.environ.get(PATH_VARIABLE, "").split(os.pathsep)):
        if not os.path.isdir(entry):
            raise ConfigError(f"{PATH_VARIABLE}: {entry} is not a directory")
        if os.path.exists(os.path.join(entry, "__init__.py")):
            _register_module(_load_folder(entry))
            continue
        for sub in sorted(os.listdir(entry)):
            if os.path.exists(os.path.join(entry, sub, "__init__.py")):
                _register_module(_load_folder(os.path.join(entry, sub)))
    try:
        from importlib.metadata import entry_points
        for ep in entry_points().select(group=ENTRY_POINT_GROUP) if hasattr(entry_points(), "select") else []:
            _register_module(ep.load())
    except Exception as exc:  # noqa: BLE001
        log.warning("cycle entry points could not be loaded: %s", exc)


def names() -> list:
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> Cycle:
    _discover()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown cycle '{name}' (known: {', '.join(sorted(_REGISTRY))}; plug-ins are found in "
                          f"bcp_hpc/cycles/, in the folders of ${PATH_VARIABLE} and in '{ENTRY_POINT_GROUP}' entry points)")
    return _REGISTRY[name]


def all_cycles() -> list:
    _discover()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def experiments() -> dict:
    """``name -> (cycle, Experiment)`` over every registered cycle."""
    out = {}
    for c in all_cycles():
        for e in c.experiments:
            if e.name in out:
                raise ConfigError(f"experiment '{e.name}' is declared by cycles {out[e.name][0].name} and {c.name}")
            out[e.name] = (c, e)
    return out
