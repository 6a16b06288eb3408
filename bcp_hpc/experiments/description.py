"""The run description: a run configuration (TOML file + command-line overrides) validated once.

Sections common to every cycle are declared here (:data:`CORE_SECTIONS`); each cycle adds its
``[model]`` keys and its own sections (:mod:`bcp_hpc.cycles`).  Unknown sections and keys,
wrong types, values out of range: a :class:`~bcp_hpc.errors.ConfigError` naming the file, the
``[section] key`` and what was expected.  Relative paths in a config file are relative to that
file's folder; on the command line, to the current directory.

Access is typed and read-only: ``run.world.source``, ``run.inversion.max_it``,
``run.section("joint").noise_fraction``; ``run.to_dict()`` is the resolved configuration that
results store.
"""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..cycles import registry
from ..errors import ConfigError
from ..io.tomlfile import load_toml
from ..operators.world import WORLD_SOURCES
from ..settings import Section, Setting

SLURM_TIME = r"(\d+-)?\d+(:\d\d){0,2}"
SLURM_MEM = r"\d+[KMGT]?B?"


def core_sections() -> tuple:
    """The sections of every run (the ``[model]`` keys of the registered cycles included)."""
    model = (Setting("cycle", "P", "the biogeochemical cycle (a registered plug-in)", choices=tuple(registry.names())),)
    seen = {"cycle"}
    for c in registry.all_cycles():
        for s in c.model_settings:
            if s.name not in seen:
                seen.add(s.name)
                model += (s,)
    return (
        Section("world", (
            Setting("source", "embedded", "where grid, circulation and forcing come from", choices=WORLD_SOURCES),
            Setting("path", "", "data folder (ocim2-mask) or transport-matrix file (ocim2)", kind="path"),
            Setting("npp_product", "vgpm", "NPP product that forces the run (a name the world or inputs provide)"),
            Setting("inputs", [], "forcing and observations: `bcp-hpc data build` files and/or OCIM2 data folders, "
                    "applied in order (a later source's fields replace an earlier one's)", kind="paths"),
        ), "grid, circulation and forcing"),
        Section("model", model, "the cycle and its model switches"),
        Section("parameters", open=True, value_kind="table",
                doc="per parameter: value, optimize, prior, bounds ... (units must match the cycle's table)"),
        Section("observations", (
            Setting("dip", "synthetic", "DIP observations: synthetic (twin experiment), glodap (po4raw of the data "
                    "folder) or inputs (po4_obs, else po4, of [world] inputs)", choices=("synthetic", "glodap", "inputs")),
            Setting("noise", 0.05, "twin-data noise std (synthetic only)", units="mmol m-3", minimum=0.0),
            Setting("coverage", 0.5, "fraction of boxes observed (synthetic only)", minimum=0.0, maximum=1.0,
                    exclusive_minimum=True),
            Setting("seed", 0, "random seed of the twin data", minimum=0),
            Setting("noise_model", "likelihood", "likelihood: variance ~ 1/V_i as the volume-weighted misfit assumes; "
                    "iid: one std for every box", choices=("likelihood", "iid")),
            Setting("dip_mean", 0.0, "mean phosphate the geological restoring holds with real observations; 0: "
                    "the volume-weighted mean of the observed DIP (spec A.3)", units="mmol m-3", minimum=0.0),
        ), "observations of the misfit"),
        Section("inversion", (
            Setting("max_it", 50, "TAO iteration limit", minimum=1),
            Setting("tao_type", "bntr", "TAO method (bounded trust-region Newton by default)"),
            Setting("noise_scale", "code", "posterior scaling 2f/N_obs of spec §5.6 (code) or none",
                    choices=("code", "none")),
            Setting("hessian", "adjoint", "second-order term by one transposed solve (adjoint) or one solve per "
                    "parameter pair (forward)", choices=("adjoint", "forward")),
        ), "the Bayesian inversion", defines_problem=False),
        Section("solver", open=True, value_kind="scalar", defaults={"steady_solver": "structured"},
                doc="PETSc options database entries (without the leading dash); command-line options win",
                defines_problem=False),
        Section("output", (Setting("dir", "out/run", "output directory", kind="path"),), "where results go",
                defines_problem=False),
        Section("slurm", (
            Setting("nodes", 1, "nodes", minimum=1),
            Setting("ranks_per_node", 8, "MPI ranks per node", minimum=1),
            Setting("mem", "32G", "memory per node", pattern=SLURM_MEM, pattern_doc="a memory size like 32G"),
            Setting("time", "04:00:00", "wall time", pattern=SLURM_TIME,
                    pattern_doc="a wall time [D-]HH[:MM[:SS]] like 04:00:00"),
            Setting("partition", "", "partition"),
            Setting("account", "", "account"),
            Setting("modules", [], "`module load` lines", kind="list[str]"),
            Setting("venv", "", "virtual environment to activate in the job", kind="path"),
            Setting("launcher", "srun", "MPI launcher"),
        ), "`bcp-hpc slurm render KIND --config this.toml`", defines_problem=False),
    )


def all_sections() -> dict:
    out = {s.name: s for s in core_sections()}
    for c in registry.all_cycles():
        for s in c.sections:
            if s.name in out and out[s.name] != s:
                raise ConfigError(f"cycle {c.name} declares section [{s.name}], which exists already")
            out[s.name] = s
    return out


class SectionValues(Mapping):
    """Read-only typed values of one section: ``section.key`` or ``section["key"]``."""

    def __init__(self, name: str, values: dict):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"[{self._name}] has no key '{key}'") from None

    def __setattr__(self, key, value):
        raise AttributeError("a run description is read-only; use RunDescription.with_overrides")

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return f"[{self._name}] {self._values!r}"


@dataclass(frozen=True)
class RunDescription:
    values: dict                 #: section -> validated values
    sources: tuple = ()          #: where they came from, for messages
    #: (source, section, key) of every value a config file or a flag set (not the defaults)
    given: tuple = ()

    def __getattr__(self, name):
        values = object.__getattribute__(self, "values")
        if name in values:
            return SectionValues(name, values[name])
        raise AttributeError(f"run description has no section [{name}]")

    def __getitem__(self, name):
        return SectionValues(name, self.values[name])

    def section(self, name: str) -> SectionValues:
        return self[name]

    @property
    def cycle(self):
        return registry.get(self.values["model"]["cycle"])

    def to_dict(self) -> dict:
        return copy.deepcopy(self.values)

    def problem(self) -> dict:
        """What defines the problem (checkpoints belong to it; ``--resume`` compares it)."""
        out = {}
        for name, sec in all_sections().items():
            part = sec.problem_values(self.values[name])
            if part is not None:
                out[name] = part
        return out

    def to_json(self) -> str:
        return json.dumps(self.values, indent=2) + "\n"

    def with_overrides(self, overrides: dict, source: str = "override") -> "RunDescription":
        """A new description with ``{section: {key: value}}`` applied and validated."""
        return RunDescription(_merge(self.values, overrides, source, None, all_sections()), self.sources + (source,),
                              self.given + _given(overrides, source))

    def foreign_keys(self) -> list:
        """(source, "[section] key", owning cycles) of the given values another cycle's settings hold and this
        run's cycle does not use (e.g. ``[model] sigma2`` or ``[experiment]`` for the joint cycle)."""
        mine, owners = _cycle_keys(self.cycle), {}
        for c in registry.all_cycles():
            if c.name != self.cycle.name:
                for k in _cycle_keys(c) - mine:
                    owners.setdefault(k, []).append(c.name)
        out = []
        for source, section, key in self.given:
            for k in ((section, key), (section, None)):
                if k in owners:
                    out.append((source, f"[{section}] {key}", owners[k]))
                    break
        return out

    # ------------------------------------------------------------------ construction
    @classmethod
    def defaults(cls) -> "RunDescription":
        return cls({name: s.default_values() for name, s in all_sections().items()}, ("defaults",))

    @classmethod
    def load(cls, path: str | None = None, overrides: dict | None = None) -> "RunDescription":
        """Defaults, then the TOML file ``path``, then ``overrides`` (e.g. from command-line flags)."""
        run = cls.defaults()
        if path:
            if os.path.isdir(path):
                raise ConfigError(f"config file {path}: is a directory, expected a TOML file")
            user = load_toml(path, "config file")
            base = os.path.dirname(os.path.abspath(path))
            run = RunDescription(_merge(run.values, user, f"config file {path}", base, all_sections()),
                                 run.sources + (path,), _given(user, f"config file {path}"))
        if overrides:
            run = RunDescription(_merge(run.values, overrides, "command line", None, all_sections()),
                                 run.sources + ("command line",), run.given + _given(overrides, "command line"))
        return run


def _given(table: dict, source: str) -> tuple:
    return tuple((source, name, key) for name, sec in table.items() if isinstance(sec, dict) for key in sec)


def _cycle_keys(cycle) -> set:
    """The settings a cycle declares: ("model", key) and (section, None) for its own sections."""
    return {("model", s.name) for s in cycle.model_settings} | {(s.name, None) for s in cycle.sections}


def _merge(values: dict, override: dict, source: str, base_dir, sections: dict) -> dict:
    out = copy.deepcopy(values)
    for name, table in override.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {sorted(sections)})")
        sec = sections[name]
        checked = sec.check(table, source, base_dir)
        if sec.open:
            out[name] = {**out.get(name, {}), **checked}
        else:
            out[name].update(checked)
    return out


def configuration_reference() -> str:
    """``docs/configuration.md``: every section and key of the registered cycles' run configuration
    (``python -m bcp_hpc.experiments.description > docs/configuration.md``)."""
    out = ["# Run configuration", "",
           "A run is described by one TOML file (`--config RUN.toml`); command-line flags override it, PETSc options",
           "on the command line override `[solver]`.  Every key, its default, its type or allowed values and its",
           "units, as the package validates them (generated from the declarations; relative paths in a file are",
           "relative to that file's folder).  `resolved_config.json` in every output folder is the configuration",
           "a run used.  Settings of another cycle than the run's are refused when a flag sets them; a file's (a file",
           "may describe several cycles' runs) are named in a note as not used.", ""]
    owners = {}
    for c in registry.all_cycles():
        for s in c.sections:
            owners[s.name] = c.name
    for name, sec in all_sections().items():
        title = f"## [{name}]" + (f" (cycle {owners[name]})" if name in owners else "")
        out += [title, "", "```toml"] + sec.describe() + ["```", ""]
        if name == "model":
            for c in registry.all_cycles():
                keys = ", ".join(f"`{s.name}`" for s in c.model_settings) or "none"
                out.append(f"* cycle `{c.name}` ({c.title}): {keys}")
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(configuration_reference(), end="")
