"""The paper's P-model sweep (spec §2.6): sigma2 = 0, 0.1, ..., 0.5 each inverted, warm-started from
the previous optimum, then the two sensitivity runs at sigma2 = 0.5 (kappa_l = 1/24 h; kappa_p = 1/60 d).

Results: per run the parameters +- 1 sigma, the NPP allocation and export, the DIP R^2 and the NPP
map; the NPP(sigma2) fit ``1/(a + b sigma2)`` and its R^2 (:mod:`.report` writes Tables S1/S2 of them).  Each run is
checkpointed; ``resume`` skips finished runs and continues an interrupted one from its last
accepted iterate.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ...errors import ConfigError, InputError
from ...experiments.invert import record
from ...experiments.outputs import save_inversion
from ...experiments.runner import Setup, run_inversion
from ...inversion.tao_driver import differing_keys
from ...io.atomic import write_text_atomic
from ...log import rprint
from ...petsc_env import import_petsc4py

PETSc = import_petsc4py()


def npp_fit(s2, npp) -> dict:
    """Least-squares fit ``1/NPP = a + b sigma2`` (NPP in Pg C yr-1) and its R^2 (of 1/NPP)."""
    y = 1.0 / np.asarray(npp)
    A = np.vstack([np.ones_like(s2), s2]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    pred = A @ coef
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum() if len(y) > 2 else float("nan")
    return {"a": float(coef[0]), "b": float(coef[1]), "r2": float(r2)}


def sweep_runs(run) -> list:
    """(tag, sigma2, kappa_l or None, kappa_p or None) of every run of the sweep."""
    spec = [(s2, None, None) for s2 in run.experiment.sigma2_values]
    if run.experiment.sensitivity_runs:
        spec += [(0.5, 1.0 / (24 * 3600.0), None), (0.5, None, 1.0 / (60 * 86400.0))]
    return [(f"s2_{s2:.2f}" + ("_kl24h" if kl else "") + ("_kp60d" if kp else ""), s2, kl, kp) for s2, kl, kp in spec]


def _read_done(path: str, problem: dict) -> dict:
    """Finished runs of an earlier sweep of the same problem (``runs_done.json``)."""
    try:
        with open(path) as fh:
            done = json.load(fh)
        runs, stored = done["runs"], done["problem"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read the finished runs of an earlier sweep ({type(exc).__name__}: {exc}); remove "
                         "it or run without --resume", path=path) from None
    diff = differing_keys(stored, json.loads(json.dumps(problem)))
    if diff:
        raise ConfigError(f"--resume: {path} holds runs of another problem; these differ: {', '.join(diff)} (run "
                          "without --resume, or into another --out folder)")
    return runs


def sigma2_sweep(run, out_dir: str, resume: bool = False) -> dict:
    """Every run of the sweep (finished runs of an earlier, interrupted sweep are taken from
    ``runs_done.json`` with ``resume``); returns runs, maps, fit, summary and grid."""
    comm = PETSc.COMM_WORLD
    rank0 = comm.getRank() == 0
    if rank0:
        os.makedirs(out_dir, exist_ok=True)
    comm.tompi4py().Barrier()
    setup = Setup(run, comm, out_dir=out_dir, resume=resume)
    v = setup.model.variant
    rprint(f"P model variant: POP -> {v['pop_to']} (paper default: DOPs), uptake form {v['uptake']} (W19 default); "
           f"observations: {setup.observations_info.get('kind')}")
    ps = setup.model.parameters
    kl0, kp0 = ps["kappa_l"].value, ps["kappa_p"].value
    done_path = os.path.join(out_dir, "runs_done.json")
    problem = setup.problem()
    done = _read_done(done_path, problem) if resume and os.path.exists(done_path) else {}
    runs, maps = [], []
    x_prev = None
    try:
        for tag, s2, kl, kp in sweep_runs(run):
            ps.set(sigma2=s2, kappa_l=kl or kl0, kappa_p=kp or kp0)
            if tag in done:
                rec = done[tag]
                runs.append(rec)
                ps.set_x(rec["x"])
                x_prev = np.array(rec["x"])
                maps.append(np.array(rec["npp_map"]))
                rprint(f"run {tag}: already done (resume)")
                continue
            rprint(f"run {tag}: sigma2 = {s2}, kappa_l = {1 / (kl or kl0) / 3600:.0f} h, "
                   f"kappa_p = {1 / (kp or kp0) / 86400:.0f} d")
            out = run_inversion(setup, out_dir, tag, resume=resume, x0=x_prev)
            save_inversion(record(setup, out), out_dir, tag)
            res, post, diag = out["result"], out["posterior"], out["diagnostics"]
            x_prev = res["x"]
            rec = {"tag": tag, "sigma2": s2, "kappa_l_per_s": kl or kl0, "kappa_p_per_s": kp or kp0,
                   **{k: diag[k] for k in ("npp_pg_c_per_yr", "npp_pop_pg_c_per_yr", "npp_dops_pg_c_per_yr",
                                           "npp_dopl_pg_c_per_yr", "pop_export_pg_c_per_yr", "r2_dip",
                                           "rmse_dip_mmol_m3")},
                   "iterations": int(res["iterations"]), "converged": bool(res["converged"]),
                   "tao_reason": res["reason_name"], "remaining_step_sigma": res.get("remaining_step_sigma"),
                   "flat_decrease": res.get("flat_decrease"),
                   "objective": float(res["objective"]),
                   "x": [float(x) for x in res["x"]],
                   "parameters": {n: {"value": p["value"], "sigma": p["sigma"], "units": p["units"],
                                      "lower_1sigma": p["lower_1sigma"], "upper_1sigma": p["upper_1sigma"],
                                      "at_bound": p["at_bound"], "poorly_constrained": p["poorly_constrained"]}
                                  for n, p in post["parameters"].items()},
                   "best_constrained": post["eigen"]["best_constrained"],
                   "worst_constrained": post["eigen"]["worst_constrained"],
                   "p_budget_relative_imbalance": diag["p_budget"]["relative_imbalance"],
                   "npp_map": np.nan_to_num(diag["npp_map_mg_c_m2_d"], nan=-1.0).tolist()}
            runs.append(rec)
            maps.append(np.array(rec["npp_map"]))
            done[tag] = rec
            if rank0:
                write_text_atomic(done_path, json.dumps({"problem": problem, "runs": done,
                                                         "lat": setup.grid.lat.tolist(), "lon": setup.grid.lon.tolist()}))
            rprint(f"  -> NPP {rec['npp_pg_c_per_yr']:.2f} Pg C/yr, R2(DIP) {rec['r2_dip']:.4f}, "
                   f"{rec['iterations']} iterations" + ("" if rec["converged"] else
                                                        f" (NOT converged: {rec['tao_reason']})"))
        result = _result(run, runs, maps, setup.world.source, setup.observations_info, setup.variant(),
                         setup.grid.lat, setup.grid.lon)
    finally:
        setup.destroy()
    return result


def _result(run, runs, maps, world, observations, variant, lat, lon) -> dict:
    """The sweep's result (what :func:`.report.sweep_outputs` writes) from its runs."""
    main = [r for r in runs if r["tag"].startswith("s2_") and "_k" not in r["tag"]]
    fit = npp_fit(np.array([r["sigma2"] for r in main]), [r["npp_pg_c_per_yr"] for r in main])
    summary = {"runs": [{k: v for k, v in r.items() if k not in ("npp_map", "x", "best_constrained",
                                                                 "worst_constrained", "objective", "tag")}
                        for r in runs], "fit": fit, "world": world, "observations": observations,
               "model_variant": variant, "config": run.to_dict()}
    return {"runs": runs, "maps": maps, "fit": fit, "summary": summary, "observations": observations,
            "lat": np.asarray(lat), "lon": np.asarray(lon)}


def gather(run, out_dir: str):
    """The sweep of a SLURM job array (one sigma2 per task, each in ``<out_dir>/s2_<sigma2>``) merged into
    ``out_dir``: the tables and the NPP(sigma2) fit over every run; None (and a message) while a task has not
    finished yet, so that each task can try and the last one gathers."""
    values = list(run.experiment.sigma2_values)
    runs, maps, missing, problem, first = [], [], [], None, None
    for v in values:
        path = os.path.join(out_dir, f"s2_{v!r}", "runs_done.json")
        if not os.path.exists(path):
            missing.append(v)
            continue
        with open(path) as fh:
            try:
                done = json.load(fh)
                part, recs = done["problem"], done["runs"]
            except (ValueError, KeyError) as exc:
                raise InputError(f"cannot read a finished sigma2 run ({exc})", path=path) from None
        tag = f"s2_{v:.2f}"
        if tag not in recs:
            missing.append(v)
            continue
        if problem is None:
            problem, first = part, done
        elif differing_keys(problem, part):
            raise ConfigError(f"{path}: a run of another problem ({', '.join(differing_keys(problem, part))})")
        runs.append(recs[tag])
        maps.append(np.array(recs[tag]["npp_map"]))
    if missing:
        rprint(f"gather: sigma2 runs {missing} not finished yet in {out_dir} (the last task gathers)")
        return None
    return _result(run, runs, maps, problem["world"]["source"], {"kind": problem["observations"]["dip"]},
                   problem.get("model", {}), first["lat"], first["lon"])
