"""Spec §3.7: the joint inversion forced by each NPP product of ``[joint] npp_products`` against the
same observations, totals as mean +- sample std (n - 1), and the cross experiment X (the last
product's forcing with the second product's optimal parameters, no re-optimisation)."""
from __future__ import annotations

import json
import os

import numpy as np

from ...errors import ConfigError, InputError
from ...experiments.invert import record
from ...experiments.outputs import save_inversion
from ...experiments.runner import Setup, run_inversion
from ...inversion.tao_driver import differing_keys
from ...log import rprint
from ...petsc_env import import_petsc4py
from ...solvers.steady import SteadyState
from .diagnostics import joint_diagnostics

PETSc = import_petsc4py()

#: totals compared across NPP products (spec §7)
PRODUCT_TOTALS = ("npp_satellite_pg_c_per_yr", "npp_model_pg_c_per_yr", "docl_production_pg_c_per_yr",
                  "poc_export_pg_c_per_yr", "docs_export_pg_c_per_yr", "docl_export_pg_c_per_yr",
                  "toc_export_pg_c_per_yr", "docl_export_north_of_30s_pg_c_per_yr",
                  "toc_export_north_of_30s_pg_c_per_yr", "poc_flux_100m_pg_c_per_yr")


def _traps_record(traps):
    """The trap comparison of one product as JSON (stations used and Taylor statistics), or None."""
    if not traps:
        return None
    return {"used": traps["used"], "taylor": traps.get("taylor"), "henson": traps.get("henson", {}),
            "esm": traps.get("esm", {}),
            "stations": {k: {q: v[q] for q in ("f100_mg_c_m2_d", "model_f100_mg_c_m2_d", "n_depths", "block")}
                         for k, v in traps["stations"].items()}}


def joint_products(run, out_dir: str, resume: bool = False) -> dict:
    comm = PETSc.COMM_WORLD
    if comm.getRank() == 0:
        os.makedirs(out_dir, exist_ok=True)
    comm.tompi4py().Barrier()
    setup = Setup(run, comm, out_dir=out_dir, resume=resume)
    try:
        products = list(run.joint.npp_products)
        missing = [p for p in products if p not in setup.world.npp_products]
        if missing:
            raise InputError(f"[joint] npp_products {missing} not in the world (have {sorted(setup.world.npp_products)})")
        runs = {}
        # each product gets its own model system; the truth's waits without its linearisation
        # (0.04 GiB per rank on the embedded world on 2 ranks)
        setup.system.release_linearisation()
        for prod in products:
            model, system = setup.model_for(prod)
            try:
                out = run_inversion(setup, out_dir, f"joint_{prod}", resume=resume, model=model, system=system)
            finally:
                system.destroy()
            save_inversion(record(setup, out, model=model, product=prod), out_dir, prod)
            d, res = out["diagnostics"], out["result"]
            runs[prod] = {"iterations": int(res["iterations"]), "objective": float(res["objective"]),
                          "converged": bool(res["converged"]), "tao_reason": res["reason_name"],
                          "remaining_step_sigma": res.get("remaining_step_sigma"),
                          "flat_decrease": res.get("flat_decrease"),
                          "x": [float(v) for v in res["x"]],
                          "parameters": {n: {"value": v["value"], "sigma": v["sigma"], "units": v["units"],
                                             "at_bound": v["at_bound"], "poorly_constrained": v["poorly_constrained"]}
                                         for n, v in out["posterior"]["parameters"].items()},
                          **{k: float(d[k]) for k in PRODUCT_TOTALS},
                          "fit_r2": {t: st["r2"] for t, st in d.get("fit", {}).items()},
                          "fit": d.get("fit", {}), "henson_f100_pg_c_per_yr": d.get("henson_f100_pg_c_per_yr", {}),
                          "traps": _traps_record(d.get("traps")),
                          # a twin: is the truth (forced by the twin's product) inside this product's 95 % region
                          "truth_credibility": out.get("truth_credibility")}
            rprint(f"{prod}: TOC export {d['toc_export_pg_c_per_yr']:.3f} Pg C/yr (POC {d['poc_export_pg_c_per_yr']:.3f}, "
                   f"DOC_s {d['docs_export_pg_c_per_yr']:.3f}, DOC_l {d['docl_export_pg_c_per_yr']:.3f}); "
                   f"DOC_l production {d['docl_production_pg_c_per_yr']:.2f}"
                   + ("" if res["converged"] else f"; NOT converged ({res['reason_name']})"))
        payload = _summary(run, setup, products, runs)
    finally:
        setup.destroy()
    return payload


def _summary(run, setup, products: list, runs: dict) -> dict:
    """The experiment's payload from the runs of its products: totals as mean +- sample std, and the cross
    experiment (the last product's forcing with another product's optimum: one steady state)."""
    stats = {}
    for k in PRODUCT_TOTALS:
        vals = np.array([runs[p][k] for p in products])
        stats[k] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}
    cross = None
    if len(products) >= 2:
        forcing, params_from = products[-1], products[1] if len(products) > 2 else products[0]
        model, system = setup.model_for(forcing)
        try:
            model.parameters.set_x(np.array(runs[params_from]["x"]))
            with SteadyState(system, prefix="cross_") as ss:
                ss.solve()
                state = system.to_natural(ss.u, root=0)
        finally:
            system.destroy()
        # the forward DOC_l export on rank 0, the one rank with the whole state
        docl = None
        if state is not None:
            docl = float(joint_diagnostics(model, setup.grid, state)["docl_export_pg_c_per_yr"])
        cross = {"forcing": forcing, "parameters_from": params_from,
                 "docl_export_pg_c_per_yr": setup.comm.tompi4py().bcast(docl, root=0),
                 "docl_export_optimal_pg_c_per_yr": runs[forcing]["docl_export_pg_c_per_yr"]}
        rprint(f"cross experiment: {forcing} forcing with the {params_from} optimum: DOC_l export "
               f"{cross['docl_export_pg_c_per_yr']:.3f} vs {cross['docl_export_optimal_pg_c_per_yr']:.3f} optimal")
    return {"products": products, "runs": runs, "mean_std": stats, "cross_experiment": cross,
            "world": setup.world.source, "variant": setup.variant(), "config": run.to_dict()}


def gather(run, out_dir: str):
    """The products of a SLURM job array (one product per task, each in ``<out_dir>/product_<name>``)
    merged into ``out_dir``: the mean +- std table and the cross experiment over every product; None (and a
    message) while a task has not finished, so that each task can try and the last one gathers."""
    products = list(run.joint.npp_products)
    runs, missing = {}, []
    for prod in products:
        path = os.path.join(out_dir, f"product_{prod}", "joint_products.json")
        if not os.path.exists(path):
            missing.append(prod)
            continue
        try:
            with open(path) as fh:
                part = json.load(fh)
            runs[prod] = part["runs"][prod]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read the finished product {prod} ({type(exc).__name__}: {exc})",
                             path=path) from None
        diff = differing_keys(run.problem(), type(run)(part["config"]).problem())
        if diff:
            raise ConfigError(f"{path}: a run of another problem ({', '.join(diff)})")
    if missing:
        rprint(f"gather: products {missing} not finished yet in {out_dir} (the last task gathers)")
        return None
    setup = Setup(run, PETSc.COMM_WORLD)
    try:
        return _summary(run, setup, products, runs)
    finally:
        setup.destroy()
