"""Run configuration (TOML).  One file describes a run; CLI flags override; the resolved
configuration is stored with the results.  Unknown keys are errors.

Example::

    [world]
    source = "embedded"          # embedded | ocim2-mask | ocim2 | generated-2deg
    path = ""                    # data directory (ocim2-mask) or operator file (ocim2)
    npp_product = "vgpm"
    inputs = ""                  # forcing from `bcp-hpc data build` output or an OCIM2 data folder

    [model]
    cycle = "P"                  # P (4-tracer P model) | PCO (joint P-C-O model, 21 parameters)
    labile = true                # PCO: labile production N_sat - P_C (false: the first-stage model without it)
    sigma2 = 0.0
    pop_to = "DOPs"              # paper (default) | "DIP" (group's code)
    uptake = "w19"               # W19 form (default for P-only) | "bgc"

    [parameters.b]               # any field of a parameter: value, optimize, prior, bounds ...
    value = 0.9

    [observations]
    dip = "synthetic"            # synthetic (twin experiment) | glodap (po4raw in the data directory)
                                 # | inputs (po4_obs, else po4, of [world] inputs)
    noise = 0.05                 # mmol m-3, synthetic only
    coverage = 0.5               # fraction of boxes observed, synthetic only
    noise_model = "likelihood"   # likelihood: variance ~ 1/V_i as the volume-weighted misfit assumes | iid
    seed = 0

    [truth]                      # parameters that generate synthetic observations
    alpha = 0.08

    [joint]                      # the joint inversion ([model] cycle = "PCO")
    observations = "synthetic"   # twin experiment (truth: the BGC defaults of spec §4.2, or [joint.truth])
    observed = ["DIP", "DIC", "ALK", "O2"]
    noise_fraction = 0.02        # noise std / the tracer's volume-weighted spatial std
    start_perturbation = 0.1     # std of the start's offset from the truth in transformed parameters
    npp_products = ["vgpm", "cbpm", "cafe"]   # `bcp-hpc experiment joint-products`: one inversion each

    [inversion]
    max_it = 50
    hessian = "adjoint"          # adjoint (one transposed solve) | forward (one solve per parameter pair)
    noise_scale = "code"         # posterior scaling 2f/N_obs of spec §5.6 | none

    [solver]                     # PETSc options database entries (without the leading dash)
    steady_pc_factor_mat_solver_type = "mumps"

    [slurm]                      # `bcp-hpc slurm render KIND --config this.toml`
    nodes = 1
    ranks_per_node = 8
    mem = "32G"                  # per node
    time = "04:00:00"
    modules = ["petsc/3.18"]     # `module load` lines
    venv = "/path/to/bcp-hpc/.venv"
    launcher = "srun"
"""
from __future__ import annotations

import copy

from .errors import ConfigError
from .io.tomlfile import load_toml

SECONDS_PER_YEAR = 365 * 86400.0

DEFAULTS = {
    "world": {"source": "embedded", "path": "", "npp_product": "vgpm", "inputs": ""},
    "model": {"cycle": "P", "sigma2": 0.0, "pop_to": "DOPs", "uptake": "w19", "labile": True},
    "parameters": {},
    "observations": {"dip": "synthetic", "noise": 0.05, "coverage": 0.5, "seed": 0, "noise_model": "likelihood"},
    "truth": {"alpha": 0.08, "beta": 0.6, "b": 1.0, "kappa_d": 1.0 / (0.4 * SECONDS_PER_YEAR)},
    "inversion": {"max_it": 50, "tao_type": "bntr", "noise_scale": "code", "hessian": "adjoint"},
    # the joint P-C-O inversion ([model] cycle = "PCO"): twin experiment on DIP, DIC, ALK, O2
    "joint": {"observations": "synthetic", "observed": ["DIP", "DIC", "ALK", "O2"], "noise_fraction": 0.02,
              "start_perturbation": 0.1, "truth": {}, "npp_products": ["vgpm", "cbpm", "cafe"]},
    "experiment": {"sigma2_values": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "sensitivity_runs": True},
    # runs use the structured path (Schur factor of [DIP, DOPs], block GMRES, adjoint Hessian): on the
    # embedded world an inversion takes 25 s at sigma2 = 0 and 65 s at 0.5 against 54 s and 94 s with the
    # monolithic LU (2 ranks); `steady_solver = "direct"` (or -steady_solver direct) selects the latter
    "solver": {"steady_solver": "structured"},
    "output": {"dir": "out/run"},
    "slurm": {"nodes": 1, "ranks_per_node": 8, "mem": "32G", "time": "04:00:00", "partition": "", "account": "",
              "modules": [], "venv": "", "launcher": "srun"},
}
OPEN_SECTIONS = {"parameters", "truth", "solver", "joint.truth"}


def merge(base: dict, override: dict, source: str, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        where = f"{path}{k}"
        if path == "" and k not in base:
            raise ConfigError(f"{source}: unknown section [{k}] (known: {sorted(base)})")
        if path and path.rstrip(".") not in OPEN_SECTIONS and k not in base:
            raise ConfigError(f"{source}: unknown key '{where}' (known in [{path.rstrip('.')}]: {sorted(base)})")
        if isinstance(v, dict) and isinstance(base.get(k), dict) and path.rstrip(".") not in OPEN_SECTIONS:
            out[k] = merge(base[k], v, source, where + ".")
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(path: str | None = None, overrides: dict | None = None) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        user = load_toml(path, "config file")
        cfg = merge(cfg, user, f"config file {path}")
    if overrides:
        cfg = merge(cfg, overrides, "command line")
    return cfg


def apply_solver_options(cfg: dict):
    """Put [solver] entries into PETSc's options database (command-line options win)."""
    from .petsc_env import import_petsc4py
    PETSc = import_petsc4py()
    opts = PETSc.Options()
    for k, v in cfg.get("solver", {}).items():
        if not opts.hasName(k):
            opts.setValue(k, str(v))
