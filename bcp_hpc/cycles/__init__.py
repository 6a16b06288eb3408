"""Biogeochemical cycles as plug-ins: one package per cycle (its parameters, processes, model
declaration, diagnostics, configuration keys and experiments), found by :mod:`.registry`."""
from .registry import Cycle, Experiment, all_cycles, experiments, get, names, register

__all__ = ["Cycle", "Experiment", "all_cycles", "experiments", "get", "names", "register"]
