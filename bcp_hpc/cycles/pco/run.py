"""The joint cycle's part of a run: its model from the run description, the twin truth (the BGC
defaults or ``[joint.truth]``), the twin noise (a fraction of each tracer's spatial std) and the
start (the truth perturbed, seeded)."""
from __future__ import annotations

import numpy as np

from .model import joint_model

#: mmol m-3, the P inventory of the twin experiments
DIP_MEAN_TWIN = 2.1
#: TAO stops when |g| < JOINT_GRTOL |f|: poorly constrained directions (DOC_r removal rates) keep |g| above
#: an absolute tolerance long after the fit has converged (-inv_tao_grtol overrides; relative to the current
#: f, so a resumed run stops where the uninterrupted one did)
JOINT_GRTOL = "2e-3"


def build(setup, product: str):
    m = setup.run.model
    return joint_model(setup.world, setup.world.npp(product), DIP_MEAN_TWIN, labile=bool(m.labile), borate=m.borate,
                       uptake_pc=m.uptake_pc)


def truth(setup, model) -> dict:
    return {**model.parameters.values(), **{k: float(v) for k, v in setup.run.joint.truth.items()}}


def twin_observed(setup, truth_state) -> list:
    """Each observed tracer with noise ``noise_fraction`` x its volume-weighted spatial std (mmol m-3)."""
    V = setup.grid.box_volume
    frac = float(setup.run.joint.noise_fraction)
    out = []
    for name in setup.run.joint.observed:
        field = setup.model.observable(name, truth_state)
        mean = (field * V).sum() / V.sum()
        out.append((name, frac * float(np.sqrt((V * (field - mean) ** 2).sum() / V.sum()))))
    return out


def start(setup, x_true) -> np.ndarray:
    """Transformed starting parameters: the truth perturbed by ``start_perturbation`` (seeded), inside the bounds."""
    ps = setup.model.parameters
    rng = np.random.default_rng(int(setup.run.observations.seed) + 1000)
    x0 = x_true + float(setup.run.joint.start_perturbation) * rng.standard_normal(x_true.size)
    for k, name in enumerate(ps.optimized):
        par = ps[name]
        lo, hi = par.bounds
        x_lo = par.to_x(lo) if (par.transform != "log" or lo > 0) else -np.inf
        x_hi = par.to_x(hi) if np.isfinite(hi) else np.inf
        x0[k] = float(np.clip(x0[k], x_lo + 1e-9 * abs(x_lo), x_hi - 1e-9 * abs(x_hi)))
    return x0
