"""Joint P-C-O model diagnostics (spec §6): NPP, POC / DOC_s / DOC_l / TOC export at the euphotic
base (DOC by the adjoint method), POC flux at 100 m, Southern-Ocean-excluded totals, fit
statistics of every observed tracer, carbon budget.

Every rate comes from the model's processes (:meth:`~bcp_hpc.models.base.Model.rates`).  Totals in
Pg C yr^-1; maps in mg C m^-2 d^-1 per column.  ``state`` is the natural-order ``(11, n)`` array in
the order of :data:`.model.TRACERS`.
"""
from __future__ import annotations

import numpy as np

from ...constants import MGC_M2_D_PER_MMOLC_M2_S, PGC_PER_MMOLC_S, SECONDS_PER_YEAR
from ...diagnostics.export import export_probability
from ...diagnostics.export_compare import compare_with_traps, henson_f100, total_pg_c_per_yr
from ...diagnostics.fit import fit_statistics
from .carbon import degradation_rate


def model_npp(model, grid, rates: dict) -> dict:
    """Global model NPP, satellite NPP and DOC_l production (Pg C yr-1), spec §6.1 (local C:P)."""
    V = grid.box_volume
    npp_model = float((rates["organic_production"] * V).sum() * PGC_PER_MMOLC_S)
    npp_sat = float((model.fields["nsat"] * V).sum() * PGC_PER_MMOLC_S)
    return {"npp_model_pg_c_per_yr": npp_model, "npp_satellite_pg_c_per_yr": npp_sat,
            "docl_production_pg_c_per_yr": npp_sat - npp_model}


def joint_diagnostics(model, grid, state: np.ndarray, observations: dict | None = None,
                      npp_products: dict | None = None, traps3d: np.ndarray | None = None,
                      esm_f100: dict | None = None, export_probabilities: dict | None = None) -> dict:
    """Totals (and maps) of spec §6.  With ``export_probabilities`` (:func:`adjoint_export_probabilities`)
    the DOC exports are also computed by the adjoint method (and must equal the forward formulas).
    ``npp_products`` (name -> (nlat, nlon) mg C m-2 d-1) get the Henson (2011) export; ``traps3d``
    (mg C m-2 d-1 per box, NaN = none) the station comparison with Taylor statistics (spec §6.5) of
    the model, of the Henson export of each product and of each Earth-system model's POC flux at
    100 m in ``esm_f100`` (name -> map).

    Maps (mg C m-2 d-1 per column): model and satellite NPP, labile (DOC_l) production, the POC, DOC_s,
    DOC_l and TOC export below the euphotic zone, the POC flux at 100 m and each product's Henson export."""
    names = model.tracer_names
    c = {nm: state[a] for a, nm in enumerate(names)}
    p = model.parameters.values()
    f = model.fields
    rates = model.rates(state)
    V = grid.box_volume
    below = ~grid.euphotic
    north = grid.box_lat > -30.0
    out = model_npp(model, grid, rates)
    exported = {"poc": rates["poc_remineralisation"], "docs": rates["docs_degradation"],
                "docl": rates["docl_remineralisation"]}
    for k, r in exported.items():
        out[f"{k}_export_pg_c_per_yr"] = float((r * V)[below].sum() * PGC_PER_MMOLC_S)
        out[f"{k}_export_north_of_30s_pg_c_per_yr"] = float((r * V)[below & north].sum() * PGC_PER_MMOLC_S)
    out["toc_export_pg_c_per_yr"] = sum(out[f"{k}_export_pg_c_per_yr"] for k in exported)
    pc = rates["organic_production"]
    for key, rate in (("npp_model", pc), ("npp_satellite", f["nsat"]), ("docl_production", f["nsat"] - pc)):
        out[f"{key}_map_mg_c_m2_d"] = grid.column_sum_map(rate) * MGC_M2_D_PER_MMOLC_M2_S
    for k in ("docs", "docl"):
        out[f"{k}_export_map_mg_c_m2_d"] = grid.column_sum_map(np.where(below, exported[k], 0.0)) \
            * MGC_M2_D_PER_MMOLC_M2_S
    out["toc_export_map_mg_c_m2_d"] = grid.column_sum_map(np.where(below, sum(exported.values()), 0.0)) \
        * MGC_M2_D_PER_MMOLC_M2_S
    out["toc_export_north_of_30s_pg_c_per_yr"] = sum(out[f"{k}_export_north_of_30s_pg_c_per_yr"] for k in exported)
    # POC flux at 100 m: Martin scaling of each column's export with the local b_C (spec §6.4)
    bC = p["bC"] + p["bC_T"] * f["tau"]
    zc = grid.euphotic_base_m
    poc_map = grid.column_sum_map(np.where(below, exported["poc"], 0.0)) * MGC_M2_D_PER_MMOLC_M2_S
    bmap = np.full(grid.shape[:2], np.nan)
    bmap[grid.box_ilat, grid.box_ilon] = bC
    out["poc_export_map_mg_c_m2_d"] = poc_map
    out["poc_flux_100m_map_mg_c_m2_d"] = poc_map * (100.0 / zc) ** (-bmap)
    out["poc_flux_100m_pg_c_per_yr"] = total_pg_c_per_yr(out["poc_flux_100m_map_mg_c_m2_d"], grid.area2d)
    henson = {}
    if npp_products:
        sst = grid.surface_to2d(f["temp_surface"][grid.box_k == 0])
        henson = {k: henson_f100(v, sst) for k, v in npp_products.items()}
        out["henson_f100_pg_c_per_yr"] = {k: total_pg_c_per_yr(m, grid.area2d) for k, m in henson.items()}
        for k, m in henson.items():
            out[f"henson_f100_{k}_map_mg_c_m2_d"] = m
    if traps3d is not None:
        out["traps"] = compare_with_traps(out["poc_flux_100m_map_mg_c_m2_d"], traps3d, grid)
        # the independent estimates at the same stations (Figure 4's other points)
        out["traps"]["henson"] = {k: compare_with_traps(m, traps3d, grid).get("taylor") for k, m in henson.items()}
        out["traps"]["esm"] = {k: compare_with_traps(m, traps3d, grid).get("taylor")
                               for k, m in (esm_f100 or {}).items()}
    if export_probabilities:
        ez = grid.euphotic
        made = {"docs": p["sigC"] * pc, "docl": f["nsat"] - pc}       # production in the euphotic zone
        for key, xi in export_probabilities.items():
            out[f"{key}_export_adjoint_pg_c_per_yr"] = float((xi * made[key] * V)[ez].sum() * PGC_PER_MMOLC_S)
            out[f"{key}_export_probability_range"] = [float(xi.min()), float(xi.max())]
    out["c_budget"] = carbon_budget(grid, rates, c["DIC"])
    if observations:
        out["fit"] = {}
        for nm, obs in observations.items():
            st = fit_statistics(grid, model.observable(nm, state), obs)
            out["fit"][nm] = {"r2": st["r2"], "rmse_mmol_m3": st["rmse"], "n_obs": st["n_obs"]}
    return out


def carbon_budget(grid, rates: dict, dic: np.ndarray) -> dict:
    """Global sums (mmol C s-1) of the air-sea and virtual carbon fluxes: at steady state the net
    air-sea flux balances the virtual flux (spec §3.2)."""
    V = grid.box_volume
    jg = rates["co2_gas_exchange"]
    air_sea = float((jg * V).sum())
    virtual = float((rates["dic_virtual_flux"] * V).sum())
    gross = float((np.abs(jg) * V).sum())
    return {"air_sea_mmol_s": air_sea, "virtual_mmol_s": virtual,
            "air_sea_pg_c_per_yr": air_sea * SECONDS_PER_YEAR * 12e-18,
            "gross_air_sea_mmol_s": gross,
            # relative to the gross exchange: both net terms are near zero at steady state
            "relative_imbalance": abs(air_sea + virtual) / max(gross, 1e-300),
            "dic_inventory_pg_c": float((dic * V).sum() * 12e-18)}


def trap_fluxes(setup):
    """Sediment-trap POC flux per box (mg C m-2 d-1, NaN = none): the trap table of the last inputs source
    that has one (a `data build` file's [traps], an OCIM2 folder's binned Mouw et al. 2016 fluxes), else
    the ocim2-mask world's own folder, else None (the synthetic worlds have no trap stations)."""
    import os

    from ...data.catalog import Ocim2Directory, open_data
    for path in reversed(list(setup.run.world.inputs)):
        with open_data(path) as src:
            t = src.trap_fluxes(setup.grid)
        if t is not None:
            return t
    folder = setup.run.world.path
    if setup.world.source == "ocim2-mask" and folder and os.path.isdir(folder):
        return Ocim2Directory(folder).trap_fluxes(setup.grid)
    return None


def adjoint_export_probabilities(model, system, root: int | None = 0) -> dict:
    """The DOC_s and DOC_l export probabilities of spec §6.3 (:func:`export_probability`), natural-order
    n-vectors on rank ``root`` (None elsewhere).  Collective: each rank gives its rows of ``system``'s
    transport and its boxes' loss rates (s^-1) at ``model``'s parameters; the loss rates depend on the
    world's temperature only, so any model system of the same world serves."""
    p = model.parameters.values()
    f = system.local_fields
    losses = {"docs": degradation_rate(p, f), "docl": np.full(system.nloc, p["kappa_l"])}
    return {k: export_probability(system.dgrid, system.T, loss, root=root)
            for k, loss in losses.items()}


def run_diagnostics(setup, model, state) -> dict | None:
    """The cycle's diagnostics hook (:class:`bcp_hpc.cycles.Cycle`), with the adjoint DOC export, the
    Henson export of every NPP product and the trap comparison where the world has trap data.

    Called on every rank: the adjoint solves are collective; the rest runs on rank 0, the only rank
    that holds the whole state (``state`` is None elsewhere, and so is the result)."""
    xi = adjoint_export_probabilities(model, setup.system)
    if state is None:
        return None
    if not hasattr(setup, "trap_fluxes"):
        setup.trap_fluxes = trap_fluxes(setup)
        setup.esm_f100 = esm_fluxes(setup)
    return joint_diagnostics(model, setup.grid, state, setup.observations, npp_products=setup.world.npp_products,
                             traps3d=setup.trap_fluxes, esm_f100=setup.esm_f100, export_probabilities=xi)


def esm_fluxes(setup) -> dict:
    """Earth-system models' POC flux at 100 m (name -> (nlat, nlon) mg C m-2 d-1) of the inputs sources (a
    later source's model replaces an earlier one's of the same name)."""
    from ...data.catalog import open_data
    out = {}
    for path in setup.run.world.inputs:
        with open_data(path) as src:
            out.update(src.esm_epc100(setup.grid))
    return out
