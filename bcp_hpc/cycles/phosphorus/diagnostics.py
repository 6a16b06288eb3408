"""P-model diagnostics (spec §6.1-6.2): model NPP, its allocation, POP export, DIP fit, P budget.

Everything is computed from the model's own processes (:meth:`~bcp_hpc.models.base.Model.rates`),
so the uptake and remineralisation formulas exist only in :mod:`.processes`.  Totals in
Pg C yr^-1 with r_C:P = 106; maps in mg C m^-2 d^-1 per column.  All functions take
natural-order arrays.
"""
from __future__ import annotations

import numpy as np

from ...constants import MGC_M2_D_PER_MMOLC_M2_S, PGC_PER_MMOLC_S
from ...diagnostics.fit import fit_statistics
from .processes import R_CP

#: the processes that return phosphorus to DIP (the remineralisation side of the P budget)
REMINERALISATION = ("dops_remineralisation", "dopl_remineralisation", "pop_dissolution")


def p_diagnostics(model, grid, state: np.ndarray, dip_obs: np.ndarray | None = None,
                  obs_weights: np.ndarray | None = None) -> dict:
    """Global totals and 2-D maps.  ``state`` is ``(4, n)`` = DIP, POP, DOPs, DOPl (mmol m-3)."""
    p = model.parameters
    V = grid.box_volume
    rates = model.rates(state)
    J = rates["uptake"]                               # mmol P m-3 s-1
    npp_total = R_CP * float((J * V).sum()) * PGC_PER_MMOLC_S
    s1, s2 = p["sigma1"].value, p["sigma2"].value
    below = ~grid.euphotic
    dissolution = rates["pop_dissolution"]
    out = {
        "npp_pg_c_per_yr": npp_total,
        "npp_pop_pg_c_per_yr": (1 - s1 - s2) * npp_total,
        "npp_dops_pg_c_per_yr": s1 * npp_total,
        "npp_dopl_pg_c_per_yr": s2 * npp_total,
        "pop_export_pg_c_per_yr": R_CP * float((dissolution * V)[below].sum()) * PGC_PER_MMOLC_S,
        "npp_map_mg_c_m2_d": R_CP * grid.column_sum_map(J) * MGC_M2_D_PER_MMOLC_M2_S,
        "pop_export_map_mg_c_m2_d": R_CP * grid.column_sum_map(np.where(below, dissolution, 0.0))
        * MGC_M2_D_PER_MMOLC_M2_S,
    }
    # southern-ocean-excluded totals (columns north of 30 S, spec §6.6)
    north = grid.box_lat > -30
    out["npp_north_of_30s_pg_c_per_yr"] = R_CP * float((J * V)[north].sum()) * PGC_PER_MMOLC_S
    # P budget: total uptake = total remineralisation to DIP; inventory held by restoring
    to_dip = [name for name in REMINERALISATION if "DIP" in model.processes[name].effects]
    uptake_total = float((J * V).sum())
    remin_total = float((sum(rates[name] for name in to_dip) * V).sum())
    dip = state[0]
    out["p_budget"] = {
        "uptake_mmol_s": uptake_total, "remineralisation_mmol_s": remin_total,
        "restoring_mmol_s": float((rates["restoring"] * V).sum()),
        "relative_imbalance": abs(uptake_total - remin_total) / max(uptake_total, 1e-300),
        "mean_dip_mmol_m3": float((dip * V).sum() / V.sum()),
        "inventory_mmol": float((np.sum(state, axis=0) * V).sum()),
    }
    if dip_obs is not None:
        st = fit_statistics(grid, dip, dip_obs, obs_weights)
        out.update({"r2_dip": st["r2"], "rmse_dip_mmol_m3": st["rmse"], "n_obs_dip": st["n_obs"]})
    return out


def run_diagnostics(setup, model, state) -> dict:
    """The cycle's diagnostics hook (:class:`bcp_hpc.cycles.Cycle`): totals, maps, budget, DIP fit."""
    return p_diagnostics(model, setup.grid, state, setup.observations.get("DIP"))
