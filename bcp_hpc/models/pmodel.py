"""The 4-tracer phosphorus model of Wu et al. (2025), spec §2 (DIP, POP, DOP_s, DOP_l).

Uptake in the euphotic zone (layers 1-2) ``J = gamma * DIP`` with (spec §2.2, W19 variant,
the default for P-only runs)::

    gamma_i = alpha * N_i**beta * h_i / (DIP_obs_i + eps),  N_i = column NPP (mmol C m-2 s-1),
    h_i = 1 / (2 dz_k r_CP),  eps = 1e-9

and the **BGC** variant as a switch (``uptake="bgc"``: ``N_i = NPP_col/(2 dz_k) p`` in
mmol P m-3 yr-1 with ``p = 1/117``, ``h = 1``, ``eps = 1e-6``).

Allocation: sigma1 (0.2) to DOP_s, sigma2 to DOP_l, the rest to POP.  POP sinks with the
Martin operator and dissolves at kappa_p into **DOP_s** (paper §2.2, default) or into DIP
(``pop_to="DIP"``, BGC code; spec §8.2).  DOP_s -> DIP at kappa_d, DOP_l -> DIP at kappa_l,
geological restoring ``kappa_g (DIPbar - DIP)``.  Optimised: alpha, beta, b, kappa_d (log).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..operators.sinking import martin_operator
from . import ad2
from .base import Model, SinkingSpec, Tracer
from .parameters import Parameter, ParameterSet

SECONDS_PER_DAY = 86400.0
SECONDS_PER_YEAR = 365.0 * SECONDS_PER_DAY
R_CP = 106.0
MG_C_PER_MMOL = 12.0


def p_parameters(sigma2: float = 0.0) -> ParameterSet:
    return ParameterSet([
        Parameter("alpha", 5.0e-2, "s-1", "uptake scaling of eq. (1) (W19 form, NPP in mmol C m-2 s-1)",
                  optimize=True, transform="log", bounds=(1e-14, 1.0)),
        Parameter("beta", 0.5, "1", "NPP exponent of eq. (1)", optimize=True, transform="log", bounds=(1e-3, 5.0)),
        Parameter("b", 0.9, "1", "Martin exponent of POP", optimize=True, transform="log", bounds=(0.05, 5.0)),
        Parameter("kappa_d", 1.0 / (0.5 * SECONDS_PER_YEAR), "s-1", "DOP_s remineralisation rate", optimize=True,
                  transform="log", bounds=(1e-12, 1e-4)),
        Parameter("sigma1", 0.2, "1", "fraction of uptake to semi-labile DOP", transform="none", bounds=(0, 1)),
        Parameter("sigma2", sigma2, "1", "fraction of uptake to labile DOP", transform="none", bounds=(0, 0.8)),
        Parameter("kappa_l", 1.0 / (12 * 3600.0), "s-1", "labile DOP remineralisation rate (1/12 h)", transform="log",
                  bounds=(1e-9, 1e-2)),
        Parameter("kappa_p", 1.0 / (30 * SECONDS_PER_DAY), "s-1", "POP dissolution rate (1/30 d)", transform="log",
                  bounds=(1e-10, 1e-3)),
        Parameter("kappa_g", 1.0 / (1e6 * SECONDS_PER_YEAR), "s-1", "geological restoring rate (1/1 Myr)",
                  transform="log", bounds=(1e-20, 1e-6)),
    ])


def uptake_fields(grid, npp_col_mgC_m2_d: np.ndarray, dip_obs: np.ndarray, variant: str = "w19"):
    """Per-box ``N`` (inside the power), ``h`` (outside) and ``1/(DIP_obs + eps)`` (natural order).

    ``npp_col_mgC_m2_d``: (nlat, nlon) column NPP (NaN/negative -> 0, spec §2.2).
    ``dip_obs``: phosphate climatology used in gamma (mmol m-3), n-vector.
    """
    npp2d = np.asarray(npp_col_mgC_m2_d, dtype=float)
    if npp2d.shape != grid.shape[:2]:
        raise InputError(f"NPP map has shape {npp2d.shape}, grid surface is {grid.shape[:2]}", variable="npp")
    surf = grid.mask[:, :, 0]
    bad = surf & (~np.isfinite(npp2d) | (npp2d < 0))
    if np.any(bad):
        raise InputError(f"NPP is NaN or negative in {int(bad.sum())} wet surface boxes "
                         f"(first at lat {grid.lat[np.argwhere(bad)[0][0]]:.1f}, lon {grid.lon[np.argwhere(bad)[0][1]]:.1f})",
                         variable="npp")
    dip_obs = np.asarray(dip_obs, dtype=float)
    ez = grid.euphotic
    if dip_obs.shape != (grid.nwet,):
        raise InputError(f"observed DIP for the uptake has shape {dip_obs.shape}, expected ({grid.nwet},)", variable="dip_obs")
    missing = ez & ~np.isfinite(dip_obs)
    if np.any(missing):
        raise InputError(f"observed DIP missing in {int(missing.sum())} euphotic boxes where uptake needs it",
                         variable="dip_obs")
    npp_box = np.where(ez, npp2d[grid.box_ilat, grid.box_ilon], 0.0)
    dz = grid.box_dz
    if variant == "w19":
        N = npp_box / (MG_C_PER_MMOL * SECONDS_PER_DAY)       # mmol C m-2 s-1
        h = np.where(ez, 1.0 / (2 * dz * R_CP), 0.0)
        eps = 1e-9
    elif variant == "bgc":
        npp_yr = npp_box * 365.0 / MG_C_PER_MMOL               # mmol C m-2 yr-1
        N = npp_yr / (2 * dz) / 117.0                          # mmol P m-3 yr-1
        h = np.where(ez, 1.0, 0.0)
        eps = 1e-6
    else:
        raise InputError(f"unknown uptake variant '{variant}' (w19 or bgc)")
    inv_dip = np.where(ez, 1.0 / (np.where(np.isfinite(dip_obs), dip_obs, 1.0) + eps), 0.0)
    return N, h, inv_dip


def p_model(grid, npp_col_mgC_m2_d, dip_obs_gamma, dip_mean: float, *, sigma2: float = 0.0,
            pop_to: str = "DOPs", uptake: str = "w19", parameters: ParameterSet | None = None) -> Model:
    """Declare the P model on ``grid``.

    ``dip_mean``: volume-weighted mean observed DIP (mmol m-3) that the restoring term holds.
    """
    if pop_to not in ("DOPs", "DIP"):
        raise InputError(f"pop_to must be 'DOPs' (paper) or 'DIP' (BGC), got '{pop_to}'")
    N, h, inv_dip = uptake_fields(grid, npp_col_mgC_m2_d, dip_obs_gamma, uptake)
    params = parameters.copy() if parameters is not None else p_parameters(sigma2)
    if parameters is None:
        params.set(sigma2=sigma2)
    logN = np.log(np.where(N > 0, N, 1.0))
    fields = {"N": N, "logN": logN, "has_N": (N > 0).astype(float), "h_inv_dip": h * inv_dip}

    def local_terms(c, p, f):
        dip, pop, dops, dopl = c["DIP"], c["POP"], c["DOPs"], c["DOPl"]
        # N**beta = exp(beta ln N) where N > 0, else 0 (and so is its beta-derivative)
        npow = ad2.exp(p["beta"] * f["logN"]) * f["has_N"]
        gamma = p["alpha"] * npow * f["h_inv_dip"]
        J = gamma * dip
        remin_pop = p["kappa_p"] * pop
        s_dip = -J + p["kappa_d"] * dops + p["kappa_l"] * dopl + p["kappa_g"] * (dip_mean - dip)
        s_pop = (1.0 - p["sigma1"] - p["sigma2"]) * J - remin_pop
        s_dops = p["sigma1"] * J - p["kappa_d"] * dops
        s_dopl = p["sigma2"] * J - p["kappa_l"] * dopl
        if pop_to == "DOPs":
            s_dops = s_dops + remin_pop
        else:
            s_dip = s_dip + remin_pop
        return {"DIP": s_dip, "POP": s_pop, "DOPs": s_dops, "DOPl": s_dopl}

    def martin_scale(p, f):
        # F(b) = kappa_p/b * F_unit: the scale depends on b (and kappa_p, fixed)
        return p["kappa_p"] / p["b"]

    tracers = [Tracer("DIP", "mmol m-3", "T", description="dissolved inorganic phosphorus"),
               Tracer("POP", "mmol m-3", "sinking", sinking="martin", description="particulate organic P"),
               Tracer("DOPs", "mmol m-3", "T", description="semi-labile dissolved organic P"),
               Tracer("DOPl", "mmol m-3", "T", eliminate=True, description="labile dissolved organic P")]
    sinking = {"martin": SinkingSpec(base=lambda g: martin_operator(g, 1.0, 1.0), scale=martin_scale)}
    return Model("P", tracers, params, local_terms, sinking, fields,
                 description="4-tracer P cycle (Wu et al. 2025 §2.2)",
                 variant={"pop_to": pop_to, "uptake": uptake, "dip_mean": dip_mean})


def uptake_rate(model: Model) -> np.ndarray:
    """gamma (s^-1) per box, natural order, at the model's current parameter values."""
    f = model.fields
    p = model.parameters
    npow = np.where(f["has_N"] > 0, np.exp(p["beta"].value * f["logN"]), 0.0)
    return p["alpha"].value * npow * f["h_inv_dip"]
