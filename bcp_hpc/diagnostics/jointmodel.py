"""Joint P-C-O model diagnostics (spec §6): NPP, POC / DOC_s / DOC_l / TOC export at the euphotic
base (DOC by the adjoint method), POC flux at 100 m, Southern-Ocean-excluded totals, fit
statistics of every observed tracer, carbon and phosphorus budgets.

Units: totals in Pg C yr^-1; maps in mg C m^-2 d^-1 per column.  ``state`` is the natural-order
``(11, n)`` array in the order of :data:`bcp_hpc.models.jointmodel.TRACERS`.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..models.jointmodel import model_npp, model_production
from ..models.pmodel import SECONDS_PER_YEAR
from .export_compare import compare_with_traps, henson_f100, total_pg_c_per_yr
from .pmodel import MGC_M2_D_PER_MMOLC_M2_S, PGC_PER_MMOLC_S, fit_statistics


def export_probability(dgrid, T, loss_rate: np.ndarray, prefix: str = "export_") -> np.ndarray:
    """Adjoint export field ``xi = V^-1 (T + K)^-T V K Omega`` (spec §6.3): the probability that a
    molecule of a dissolved pool with loss rate ``K`` (s^-1, n-vector) made in box i is respired below
    the euphotic zone.  One transposed solve on ``T + K`` (PETSc options under ``prefix``)."""
    from ..solvers.linear import LinearSolver
    grid = dgrid.grid
    V = grid.box_volume
    omega = (~grid.euphotic).astype(float)
    A = dgrid.matrix_from_scipy(sp.csr_matrix(T) + sp.diags(loss_rate))
    rhs = dgrid.vec_from_natural([V * loss_rate * omega])
    solver = LinearSolver(A, prefix)
    try:
        solver.setup()
        y = solver.solve(rhs, transpose=True)
        xi = dgrid.natural_from_vec(y, 1)[0] / V
        y.destroy()
    finally:
        solver.destroy()
        rhs.destroy()
        A.destroy()
    return xi


def joint_diagnostics(model, grid, state: np.ndarray, dgrid=None, T=None, observations: dict | None = None,
                      npp_products: dict | None = None, traps3d: np.ndarray | None = None) -> dict:
    """Totals (and maps) of spec §6.  With ``dgrid`` and ``T`` the DOC exports are also computed by the
    adjoint method (and must equal the forward formulas).  ``npp_products`` (name -> (nlat, nlon)
    mg C m-2 d-1) get the Henson (2011) export; ``traps3d`` (mg C m-2 d-1 per box, NaN = none) the
    station comparison with Taylor statistics (spec §6.5)."""
    names = model.tracer_names
    c = {nm: state[a] for a, nm in enumerate(names)}
    p = {q.name: q.value for q in model.parameters}
    f = model.fields
    V = grid.box_volume
    below = ~grid.euphotic
    north = grid.box_lat > -30.0
    kC = p["kdC"] * p["Q10C"] ** f["theta_q"]
    out = dict(model_npp(model, state, grid))
    rates = {"poc": p["kappa_p"] * c["POC"], "docs": kC * c["DOCs"], "docl": p["kappa_l"] * c["DOCl"]}
    for k, r in rates.items():
        out[f"{k}_export_pg_c_per_yr"] = float((r * V)[below].sum() * PGC_PER_MMOLC_S)
        out[f"{k}_export_north_of_30s_pg_c_per_yr"] = float((r * V)[below & north].sum() * PGC_PER_MMOLC_S)
    out["toc_export_pg_c_per_yr"] = sum(out[f"{k}_export_pg_c_per_yr"] for k in rates)
    out["toc_export_north_of_30s_pg_c_per_yr"] = sum(out[f"{k}_export_north_of_30s_pg_c_per_yr"] for k in rates)
    # POC flux at 100 m: Martin scaling of each column's export with the local b_C (spec §6.4)
    bC = p["bC"] + p["bC_T"] * f["tau"]
    zc = grid.euphotic_base_m
    poc_map = grid.column_sum_map(np.where(below, rates["poc"], 0.0)) * MGC_M2_D_PER_MMOLC_M2_S
    bmap = np.full(grid.shape[:2], np.nan)
    bmap[grid.box_ilat, grid.box_ilon] = bC
    out["poc_export_map_mg_c_m2_d"] = poc_map
    out["poc_flux_100m_map_mg_c_m2_d"] = poc_map * (100.0 / zc) ** (-bmap)
    out["poc_flux_100m_pg_c_per_yr"] = total_pg_c_per_yr(out["poc_flux_100m_map_mg_c_m2_d"], grid.area2d)
    if npp_products:
        sst = grid.surface_to2d(f["temp_surface"][grid.box_k == 0])
        out["henson_f100_pg_c_per_yr"] = {k: total_pg_c_per_yr(henson_f100(v, sst), grid.area2d)
                                          for k, v in npp_products.items()}
    if traps3d is not None:
        out["traps"] = compare_with_traps(out["poc_flux_100m_map_mg_c_m2_d"], traps3d, grid)
    if dgrid is not None and T is not None:
        ez = grid.euphotic
        pc = model_production(model, c["DIP"])
        for key, loss, source in (("docs", kC, p["sigC"] * pc), ("docl", np.full(grid.nwet, p["kappa_l"]),
                                                                  f["nsat"] - pc)):
            xi = export_probability(dgrid, T, loss)
            out[f"{key}_export_adjoint_pg_c_per_yr"] = float((xi * source * V)[ez].sum() * PGC_PER_MMOLC_S)
            out[f"{key}_export_probability_range"] = [float(xi.min()), float(xi.max())]
    # budgets: net air-sea CO2 flux (Pg C yr-1) and the organic-production closure (spec §3.2)
    out["c_budget"] = _carbon_budget(model, grid, c)
    if observations:
        out["fit"] = {}
        for nm, obs in observations.items():
            st = fit_statistics(grid, c[nm], obs)
            out["fit"][nm] = {"r2": st["r2_dip"], "rmse_mmol_m3": st["rmse_dip_mmol_m3"], "n_obs": st["n_obs_dip"]}
    return out


def _carbon_budget(model, grid, c):
    """Global sums (mmol C s-1) of the carbon sources: at steady state the net air-sea flux balances
    the virtual flux and the organic pools' sources sum to the satellite NPP."""
    from ..models import carbonate
    f = model.fields
    p = {q.name: q.value for q in model.parameters}
    V = grid.box_volume
    s = np.flatnonzero(f["is_surface"] > 0)
    k = carbonate.constants(f["temp_surface"][s], f["salt_surface"][s], f["po4_surface"][s], f["si_surface"][s],
                            f["pressure_dbar"][s])
    co2 = carbonate.co2_star(c["DIC"][s], c["ALK"][s], k)
    jg = (k.K0 * p["pco2_atm"] - co2) * f["k_co2"][s] * p["rho"] / 1000.0
    air_sea = float((jg * V[s]).sum())
    virtual = float((-f["pme"] * model.variant["s_dic"] * V).sum())
    return {"air_sea_mmol_s": air_sea, "virtual_mmol_s": virtual,
            "air_sea_pg_c_per_yr": air_sea * SECONDS_PER_YEAR * 12e-18,
            "gross_air_sea_mmol_s": float((np.abs(jg) * V[s]).sum()),
            # relative to the gross exchange: both net terms are near zero at steady state
            "relative_imbalance": abs(air_sea + virtual) / max(float((np.abs(jg) * V[s]).sum()), 1e-300),
            "dic_inventory_pg_c": float((c["DIC"] * V).sum() * 12e-18)}
