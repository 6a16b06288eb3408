"""The joint cycle's part of a run: its model from the run description (with the constants derived from
real observations, Appendix A.3), real observations of DIP, DIC, ALK, O2 (and DOC) from the user's
inputs, or a twin experiment: the truth (the BGC defaults or ``[joint.truth]``), the noise (a fraction
of each tracer's spatial std) and the start (the truth perturbed, seeded)."""
from __future__ import annotations

import numpy as np

from ...data.observations import read_observation, volume_mean
from .model import ALK_MEAN, S_ALK, S_DIC, joint_model

#: mmol m-3, the P inventory of the twin experiments
DIP_MEAN_TWIN = 2.1
#: the inversion ends when the Newton step that remains is below this many posterior standard deviations
#: (``-inv_stop_sigma`` overrides): a gradient tolerance cannot say when to stop here, because the
#: posterior is flat along some directions (DOC_r removal rates against eta_tau), where a small |g| still
#: leaves the iterate far from the optimum in units of the parameters' own uncertainty
JOINT_STOP_SIGMA = "0.05"


def build(setup, product: str):
    m = setup.run.model
    c = setup.observations_info.get("constants", {})
    return joint_model(setup.world, setup.world.npp(product), c.get("dip_mean", DIP_MEAN_TWIN),
                       alk_mean=c.get("alk_mean", ALK_MEAN), s_dic=c.get("s_dic", S_DIC), s_alk=c.get("s_alk", S_ALK),
                       labile=bool(m.labile), borate=m.borate, uptake_pc=m.uptake_pc)


def real_observations(setup):
    """The observed tracers of ``[joint] observed`` from ``[world] inputs`` (``[joint] observations =
    "inputs"``), and the constants the model takes from them: the volume-weighted means of DIP and ALK
    (the restoring targets) and of DIC and ALK in layer 1 (the virtual fluxes), mmol m-3."""
    j = setup.run.joint
    if j.observations == "synthetic":
        return None, {"kind": "synthetic"}
    g = setup.grid
    obs, per_tracer = {}, {}
    for name in j.observed:
        obs[name], per_tracer[name] = read_observation(setup.run.world.inputs, name, g,
                                                       remove_anthropogenic=bool(j.remove_anthropogenic))
    surface = g.box_k == 0
    constants = {}
    if "DIP" in obs:
        constants["dip_mean"] = volume_mean(g, obs["DIP"])
    if "ALK" in obs:
        constants["alk_mean"] = volume_mean(g, obs["ALK"])
        constants["s_alk"] = volume_mean(g, obs["ALK"], surface)
    if "DIC" in obs:
        constants["s_dic"] = volume_mean(g, obs["DIC"], surface)
    given = {k: float(j[k]) for k in ("dip_mean", "alk_mean", "s_dic", "s_alk") if float(j[k]) > 0}
    constants.update(given)
    return obs, {"kind": "inputs", "tracers": per_tracer, "constants": constants,
                 "constants_given": sorted(given)}


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


def start(setup, x_true) -> np.ndarray | None:
    """Transformed starting parameters of a twin: the truth perturbed by ``start_perturbation`` (seeded), inside
    the bounds; None with real observations (the model's parameters, i.e. the defaults and [parameters])."""
    if x_true is None:
        return None
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
