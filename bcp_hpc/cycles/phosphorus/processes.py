"""Phosphorus processes (spec §2.2, §2.4), written once and shared by the P cycle and the joint model.

* :func:`uptake_fields`: the fixed per-box factors of the uptake rate (W19 or BGC form);
* :func:`uptake_rate`: ``gamma = alpha N^beta h / (DIP_obs + eps)`` (s^-1);
* :func:`uptake`: the process ``J = gamma DIP`` (mmol P m-3 s-1) with its allocation;
* :func:`decay`: a first-order loss ``k * pool`` into another tracer (remineralisation, dissolution);
* :func:`restoring`: ``kappa_g (mean - tracer)``, the geological restoring that holds an inventory.
"""
from __future__ import annotations

import numpy as np

from ...constants import MG_C_PER_MMOL, SECONDS_PER_DAY
from ...errors import InputError
from ...models import ad2
from ...models.processes import Process

R_CP = 106.0                 #: mol C per mol P of the W19 uptake form
BGC_C_TO_P = 117.0           #: the BGC code's constant C:P inside the power


def uptake_fields(grid, npp_col_mgC_m2_d: np.ndarray, dip_obs: np.ndarray, variant: str = "w19",
                  p_to_c: np.ndarray | None = None):
    """Per-box ``N`` (inside the power), ``h`` (outside) and ``1/(DIP_obs + eps)`` (natural order).

    W19 (default of P-only runs): ``N`` = column NPP in mmol C m-2 s-1, ``h = 1/(2 dz_k r_CP)``,
    ``eps = 1e-9``.  BGC: ``N = NPP_col/(2 dz_k) p`` in mmol P m-3 yr-1 with ``p = 1/117``,
    ``h = 1``, ``eps = 1e-6``; ``p_to_c`` (BGC only, n-vector, mol P / mol C) replaces the constant
    1/117, e.g. the reoptNature set-up's ``0.006 + 0.0069 DIP_obs`` (:func:`reopt_nature_p_to_c`).
    ``npp_col_mgC_m2_d``: (nlat, nlon) column NPP, mg C m-2 d-1; ``dip_obs``: phosphate climatology
    used in gamma (mmol m-3), n-vector.
    """
    npp2d = np.asarray(npp_col_mgC_m2_d, dtype=float)
    if npp2d.shape != grid.shape[:2]:
        raise InputError(f"NPP map has shape {npp2d.shape}, grid surface is {grid.shape[:2]}", variable="npp")
    surf = grid.mask[:, :, 0]
    bad = surf & (~np.isfinite(npp2d) | (npp2d < 0))
    if np.any(bad):
        first = np.argwhere(bad)[0]
        raise InputError(f"NPP is NaN or negative in {int(bad.sum())} wet surface boxes "
                         f"(first at lat {grid.lat[first[0]]:.1f}, lon {grid.lon[first[1]]:.1f})", variable="npp")
    dip_obs = np.asarray(dip_obs, dtype=float)
    ez = grid.euphotic
    if dip_obs.shape != (grid.nwet,):
        raise InputError(f"observed DIP for the uptake has shape {dip_obs.shape}, expected ({grid.nwet},)",
                         variable="dip_obs")
    missing = ez & ~np.isfinite(dip_obs)
    if np.any(missing):
        raise InputError(f"the phosphate climatology of the uptake has no value in {int(missing.sum())} euphotic "
                         "boxes: build it with the fill (`[fields.po4] fill = true`, the default of `bcp-hpc data "
                         "build`) or give a complete climatology", variable="po4")
    npp_box = np.where(ez, npp2d[grid.box_ilat, grid.box_ilon], 0.0)
    dz = grid.box_dz
    if variant == "w19":
        N = npp_box / (MG_C_PER_MMOL * SECONDS_PER_DAY)       # mmol C m-2 s-1
        h = np.where(ez, 1.0 / (2 * dz * R_CP), 0.0)
        eps = 1e-9
    elif variant == "bgc":
        npp_yr = npp_box * 365.0 / MG_C_PER_MMOL               # mmol C m-2 yr-1
        N = npp_yr / (2 * dz) / BGC_C_TO_P if p_to_c is None else npp_yr / (2 * dz) * p_to_c  # mmol P m-3 yr-1
        h = np.where(ez, 1.0, 0.0)
        eps = 1e-6
    else:
        raise InputError(f"unknown uptake variant '{variant}' (w19 or bgc)")
    inv_dip = np.where(ez, 1.0 / (np.where(np.isfinite(dip_obs), dip_obs, 1.0) + eps), 0.0)
    return N, h, inv_dip


def reopt_nature_p_to_c(dip_obs: np.ndarray) -> np.ndarray:
    """P:C of NPP (mol P / mol C) of the reoptNature set-up, ``0.006 + 0.0069 DIP_obs`` (Galbraith & Martiny
    2015; spec §2.2), per box from the phosphate climatology of the uptake (mmol m-3)."""
    return 0.006 + 0.0069 * np.asarray(dip_obs, dtype=float)


def uptake_field_dict(N, h, inv_dip) -> dict:
    """The fields :func:`uptake_rate` reads."""
    return {"N": N, "logN": np.log(np.where(N > 0, N, 1.0)), "has_N": (N > 0).astype(float), "h_inv_dip": h * inv_dip}


def uptake_rate(p, f, alpha: str = "alpha", beta: str = "beta"):
    """``gamma = alpha N^beta h / (DIP_obs + eps)`` (s^-1); ``N^beta = exp(beta ln N)`` where N > 0,
    else 0 (and so is its beta-derivative)."""
    npow = ad2.exp(p[beta] * f["logN"]) * f["has_N"]
    return p[alpha] * npow * f["h_inv_dip"]


def uptake(effects: dict, alpha: str = "alpha", beta: str = "beta", name: str = "uptake") -> Process:
    """DIP uptake ``J = gamma DIP`` (mmol P m-3 s-1); ``effects`` allocates it (DIP -1, the rest to the
    organic pools)."""
    return Process(name, lambda c, p, f, r: uptake_rate(p, f, alpha, beta) * c["DIP"], effects,
                   description="DIP uptake in the euphotic zone (spec §2.2)")


def decay(name: str, pool: str, rate_constant, to: str | None, description: str = "") -> Process:
    """First-order loss ``k * pool`` (mmol m-3 s-1) into ``to``; ``rate_constant`` is a parameter name or
    a function ``(p, f)`` (s^-1)."""
    if isinstance(rate_constant, str):
        def rate(c, p, f, r, k=rate_constant):
            return p[k] * c[pool]
    else:
        def rate(c, p, f, r, k=rate_constant):
            return k(p, f) * c[pool]
    effects = {pool: -1}
    if to is not None:
        effects[to] = 1
    return Process(name, rate, effects, description=description or f"{pool} -> {to}")


def restoring(tracer: str, mean: float, rate: str = "kappa_g", name: str = "restoring") -> Process:
    """``kappa_g (mean - tracer)`` (mmol m-3 s-1): geological restoring of the inventory to ``mean``."""
    return Process(name, lambda c, p, f, r: p[rate] * (mean - c[tracer]), {tracer: 1},
                   description=f"geological restoring of {tracer} to {mean:g} mmol m-3")
