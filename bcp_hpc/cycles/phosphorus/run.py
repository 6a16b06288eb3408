"""The P cycle's part of a run: its model from the run description, the truth and noise of a twin
experiment, and real DIP observations (the GLODAP field of an OCIM2 data folder, or an inputs file)."""
from __future__ import annotations

import os

import numpy as np

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


def real_observations(setup):
    """Observed DIP (mmol m-3; values below 0.05 and NaN unobserved) and its volume-weighted mean, or
    None for a twin experiment."""
    kind = setup.run.observations.dip
    g = setup.grid
    if kind == "synthetic":
        return None, {"kind": "synthetic", "sigma2_truth": 0.0}
    if kind == "glodap":
        path = os.path.join(setup.run.world.path or "", "GLODAPv2_91x180x24raw.mat")
        raw = np.asarray(matfile.get(matfile.load(path, ["po4raw"]), "po4raw", path), dtype=float)
        obs = g.from3d(raw, name="po4raw", path=path)
        info = {"kind": "glodap", "file": path}
    else:
        src_path = setup.run.world.inputs
        if not src_path:
            raise InputError("observations dip = 'inputs' needs [world] inputs (a data file or directory)")
        from ...data.catalog import open_data
        with open_data(src_path) as src:
            name = "po4_obs" if "po4_obs" in src.fields() else "po4"
            obs = src.field(name, g)
        info = {"kind": "inputs", "file": src_path, "field": name}
    obs[(obs < 0.05) | ~np.isfinite(obs)] = np.nan
    V = g.box_volume
    ok = np.isfinite(obs)
    info["dip_mean_mmol_m3"] = float((obs[ok] * V[ok]).sum() / V[ok].sum())
    return {"DIP": obs}, info
