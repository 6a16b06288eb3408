"""The P cycle's part of a run: its model from the run description, the truth and noise of a twin
experiment, and real DIP observations (the GLODAP field of an OCIM2 data folder, or an inputs file)."""
from __future__ import annotations

import os

import numpy as np

from ...data.observations import filter_observations, read_observation, volume_mean
from ...errors import InputError
from ...io import matfile
from .model import p_model, p_parameters

#: mmol m-3, the P inventory (restoring target) of twin experiments
DIP_MEAN_TWIN = 2.1


def build(setup, product: str):
    m = setup.run.model
    obs = setup.real_observations
    dip_mean = DIP_MEAN_TWIN if obs is None else setup.observations_info["dip_mean_mmol_m3"]
    return p_model(setup.grid, setup.world.npp(product), setup.world.dip_gamma, dip_mean, sigma2=float(m.sigma2),
                   pop_to=m.pop_to, uptake=m.uptake)


def truth(setup, model) -> dict:
    """The twin truth: the table's defaults at sigma2 = 0 with ``[truth]`` (no labile pool)."""
    return {**p_parameters(0.0).values(), **setup.run.truth, "sigma2": 0.0}


def twin_observed(setup, truth_state) -> list:
    return [("DIP", float(setup.run.observations.noise))]


GLODAP_FILE = "GLODAPv2_91x180x24raw.mat"


def real_observations(setup):
    """Observed DIP (mmol m-3, NaN unobserved; the filter of spec §A.1) and its volume-weighted mean, or
    None for a twin experiment.  ``dip = "inputs"``: the ``po4_obs`` field of the inputs (never a
    filled climatology); ``dip = "glodap"``: ``po4raw`` of an OCIM2 data folder (``[world] inputs``,
    or the ``ocim2-mask`` world's folder)."""
    kind = setup.run.observations.dip
    g = setup.grid
    if kind == "synthetic":
        return None, {"kind": "synthetic", "sigma2_truth": 0.0}
    if kind == "glodap":
        folders = [p for p in setup.run.world.inputs if os.path.isdir(p)]
        if not folders and setup.run.world.path and os.path.isdir(setup.run.world.path):
            folders = [setup.run.world.path]
        if not folders:
            raise InputError(f"observations dip = 'glodap' reads {GLODAP_FILE} from an OCIM2 data folder: give the "
                             "folder in [world] inputs (or --inputs DIR)")
        path = os.path.join(folders[-1], GLODAP_FILE)
        raw = np.asarray(matfile.get(matfile.load(path, ["po4raw"]), "po4raw", path), dtype=float)
        obs = filter_observations(g.from3d(raw, name="po4raw", path=path), "DIP")
        info = {"kind": "glodap", "file": path, "n_obs": int(np.isfinite(obs).sum())}
    else:
        obs, read = read_observation(setup.run.world.inputs, "DIP", g)
        info = {"kind": "inputs", "file": read["source"], **read, "tracers": {"DIP": read}}
    given = float(setup.run.observations.dip_mean)
    info["dip_mean_mmol_m3"] = given if given > 0 else volume_mean(g, obs)
    info["dip_mean_from"] = "[observations] dip_mean" if given > 0 else "the observations (volume-weighted mean)"
    return {"DIP": obs}, info
