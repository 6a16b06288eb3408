"""P-model diagnostics (spec §6.1-6.2): model NPP, its allocation, POP export, DIP fit, P budget.

Units: totals in Pg C yr^-1 (``mmol C s^-1 * s_y * 12e-18``) with r_C:P = 106; maps in
mg C m^-2 d^-1 per column.  All functions take natural-order arrays.
"""
from __future__ import annotations

import numpy as np

from ..models.pmodel import R_CP, SECONDS_PER_YEAR, uptake_rate

PGC_PER_MMOLC_S = SECONDS_PER_YEAR * 12.0 * 1e-18
MGC_M2_D_PER_MMOLC_M2_S = 12.0 * 86400.0


def p_diagnostics(model, grid, state: np.ndarray, dip_obs: np.ndarray | None = None,
                  obs_weights: np.ndarray | None = None) -> dict:
    """Global totals and 2-D maps.  ``state`` is ``(4, n)`` = DIP, POP, DOPs, DOPl (mmol m-3)."""
    dip, pop, dops, dopl = state
    p = model.parameters
    V = grid.box_volume
    gamma = uptake_rate(model)
    J = gamma * dip                                   # mmol P m-3 s-1
    npp_total = R_CP * float((J * V).sum()) * PGC_PER_MMOLC_S
    s1, s2 = p["sigma1"].value, p["sigma2"].value
    below = ~grid.euphotic
    kp = p["kappa_p"].value
    pop_export = R_CP * float((kp * pop * V)[below].sum()) * PGC_PER_MMOLC_S
    out = {
        "npp_pg_c_per_yr": npp_total,
        "npp_pop_pg_c_per_yr": (1 - s1 - s2) * npp_total,
        "npp_dops_pg_c_per_yr": s1 * npp_total,
        "npp_dopl_pg_c_per_yr": s2 * npp_total,
        "pop_export_pg_c_per_yr": pop_export,
        "npp_map_mg_c_m2_d": R_CP * grid.column_sum_map(J) * MGC_M2_D_PER_MMOLC_M2_S,
        "pop_export_map_mg_c_m2_d": R_CP * grid.column_sum_map(np.where(below, kp * pop, 0.0)) * MGC_M2_D_PER_MMOLC_M2_S,
    }
    # southern-ocean-excluded totals (columns north of 30 S, spec §6.6)
    north = grid.box_lat > -30
    out["npp_north_of_30s_pg_c_per_yr"] = R_CP * float((J * V)[north].sum()) * PGC_PER_MMOLC_S
    # P budget: total uptake = total remineralisation to DIP; inventory held by restoring
    remin = p["kappa_d"].value * dops + p["kappa_l"].value * dopl
    if model.variant.get("pop_to") == "DIP":
        remin = remin + kp * pop
    kg = p["kappa_g"].value
    restoring = kg * (model.variant["dip_mean"] - dip)
    uptake_total = float((J * V).sum())
    remin_total = float((remin * V).sum())
    out["p_budget"] = {
        "uptake_mmol_s": uptake_total, "remineralisation_mmol_s": remin_total,
        "restoring_mmol_s": float((restoring * V).sum()),
        "relative_imbalance": abs(uptake_total - remin_total) / max(uptake_total, 1e-300),
        "mean_dip_mmol_m3": float((dip * V).sum() / V.sum()),
        "inventory_mmol": float(((dip + pop + dops + dopl) * V).sum()),
    }
    if dip_obs is not None:
        out.update(fit_statistics(grid, dip, dip_obs, obs_weights))
    return out


def fit_statistics(grid, model_values, obs, weights=None) -> dict:
    """Volume-weighted R^2 and RMSE of model against observations where observed (spec §5.2 weights)."""
    ok = np.isfinite(obs)
    w = grid.box_volume[ok] if weights is None else weights[ok]
    w = w / w.sum()
    y = obs[ok]
    c = model_values[ok]
    ybar = (w * y).sum()
    var = (w * (y - ybar) ** 2).sum()
    mse = (w * (c - y) ** 2).sum()
    return {"r2_dip": float(1 - mse / var), "rmse_dip_mmol_m3": float(np.sqrt(mse)), "n_obs_dip": int(ok.sum())}
