"""The paper's P-model experiments: a single inversion and the sigma2 sweep (spec §2.6).

``sigma2 = 0, 0.1, ..., 0.5`` each inverted, warm-started from the previous optimum, then the
two sensitivity runs at sigma2 = 0.5 (kappa_l = 1/24 h; kappa_p = 1/60 d).  Products:
Table S1 (parameters +- 1 sigma), Table S2 (NPP allocation), the NPP(sigma2) fit
``1/(a + b sigma2)`` and its R^2, the DIP R^2 of each run, NPP maps; HDF5 (named dimensions,
units) + CSV + JSON under ``out``.  Each run is checkpointed; ``resume`` skips finished runs
and continues an interrupted one from its last accepted iterate.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os

import h5py
import numpy as np

from ..diagnostics.pmodel import p_diagnostics
from ..errors import InputError
from ..grid.distributed import DistributedGrid
from ..inversion.objective import Objective, Observation
from ..inversion.posterior import posterior
from ..inversion.tao_driver import Inversion
from ..io import matfile
from ..io.atomic import atomic_path, write_text_atomic
from ..log import rprint
from ..models.pmodel import p_model
from ..models.system import ModelSystem
from ..operators.world import load_world
from ..petsc_env import import_petsc4py
from ..solvers.steady import SteadyState

PETSc = import_petsc4py()
log = logging.getLogger(__name__)


def synthetic_observations(truth_field, volume, noise: float, coverage: float, seed: int,
                           noise_model: str = "likelihood"):
    """Twin-experiment observations: the true field on a random ``coverage`` fraction of boxes plus
    Gaussian noise; returns (observations with NaN where unobserved, noise std per box), mmol m-3.

    ``noise_model = "likelihood"`` (default) draws the noise the objective's error model assumes:
    the volume weights ``w_i = V_i / sum V`` of spec §5.2 are precisions, so box i gets variance
    ``noise^2 * Vbar / V_i`` (``Vbar`` the mean observed volume; average precision ``1/noise^2``).
    Then the Laplace posterior of spec §5.6 (``2f/N_obs`` times the inverse Hessian) is the right
    yardstick for the recovered parameters.  ``"iid"`` uses one std ``noise`` for every box: the
    volume-weighted misfit then has fewer effective observations than ``N_obs`` (Kish factor
    ``N sum w_i^2``) and the §5.6 error bars are optimistic by its square root."""
    if noise_model not in ("likelihood", "iid"):
        raise InputError(f"[observations] noise_model must be 'likelihood' or 'iid', got {noise_model!r}")
    if not 0.0 < coverage <= 1.0:
        raise InputError(f"[observations] coverage must be in (0, 1], got {coverage}")
    rng = np.random.default_rng(seed)
    observed = rng.random(truth_field.size) < coverage
    std = np.full(truth_field.size, noise)
    if noise_model == "likelihood":
        std = noise * np.sqrt(volume[observed].mean() / volume)
    obs = truth_field + std * rng.standard_normal(truth_field.size)
    obs[~observed] = np.nan
    return obs, std


class PSetup:
    """World, distributed grid, P model and observations for a configuration."""

    def __init__(self, cfg: dict, comm=None):
        self.cfg = cfg
        self.comm = comm or PETSc.COMM_WORLD
        w = cfg["world"]
        self.world = load_world(w["source"], w.get("path") or None, inputs=w.get("inputs") or None)
        self.grid = self.world.grid
        self.dgrid = DistributedGrid(self.grid, self.comm)
        self.npp = self.world.npp(w.get("npp_product") or None)
        self.obs, self.dip_mean, self.obs_info = self._observations()
        mc = cfg["model"]
        self.model = p_model(self.grid, self.npp, self.world.dip_gamma, self.dip_mean, sigma2=float(mc["sigma2"]),
                             pop_to=mc["pop_to"], uptake=mc["uptake"])
        self.model.parameters.update_from(cfg.get("parameters", {}), "config [parameters]")
        self.system = ModelSystem(self.model, self.dgrid, self.world.T)

    def _observations(self):
        oc = self.cfg["observations"]
        g = self.grid
        if oc["dip"] == "synthetic":
            truth = dict(self.cfg["truth"])
            dip_mean = 2.1
            m = p_model(g, self.npp, self.world.dip_gamma, dip_mean, sigma2=0.0,
                        pop_to=self.cfg["model"]["pop_to"], uptake=self.cfg["model"]["uptake"])
            m.parameters.set(**truth)
            with SteadyState(ModelSystem(m, DistributedGrid(g, self.comm), self.world.T), prefix="truth_") as ss:
                ss.solve()
                dip = ss.system.to_natural(ss.u)[0]
                ss.system.destroy()
            obs, std = synthetic_observations(dip, g.box_volume, float(oc["noise"]), float(oc["coverage"]),
                                              int(oc["seed"]), oc.get("noise_model", "likelihood"))
            return obs, dip_mean, {"kind": "synthetic", "truth": truth, "noise_mmol_m3": oc["noise"],
                                   "noise_model": oc.get("noise_model", "likelihood"), "sigma2_truth": 0.0}
        if oc["dip"] == "glodap":
            d = self.cfg["world"].get("path") or ""
            path = os.path.join(d, "GLODAPv2_91x180x24raw.mat")
            dd = matfile.load(path, ["po4raw"])
            raw = np.asarray(matfile.get(dd, "po4raw", path), dtype=float)
            obs = g.from3d(raw, name="po4raw", path=path)
            return self._observed(obs, {"kind": "glodap", "file": path})
        if oc["dip"] == "inputs":
            src_path = self.cfg["world"].get("inputs") or ""
            if not src_path:
                raise InputError("observations dip = 'inputs' needs [world] inputs (a data file or directory)")
            from ..data.catalog import open_data
            with open_data(src_path) as src:
                name = "po4_obs" if "po4_obs" in src.fields() else "po4"
                obs = src.field(name, g)
            return self._observed(obs, {"kind": "inputs", "file": src_path, "field": name})
        raise InputError(f"unknown observation source '{oc['dip']}' (synthetic, glodap or inputs)")

    def _observed(self, obs, info):
        """Observed DIP (mmol m-3; values below 0.05 and NaN unobserved), its volume-weighted mean, info."""
        obs[(obs < 0.05) | ~np.isfinite(obs)] = np.nan
        V = self.grid.box_volume
        ok = np.isfinite(obs)
        return obs, float((obs[ok] * V[ok]).sum() / V[ok].sum()), info


def run_inversion(setup: PSetup, out_dir: str, tag: str, resume: bool = False, x0=None) -> dict:
    obj = Objective(setup.system, [Observation("DIP", setup.obs)],
                    hessian=setup.cfg["inversion"].get("hessian", "adjoint"))
    ck = os.path.join(out_dir, f"checkpoint_{tag}.h5")
    jl = os.path.join(out_dir, f"iterations_{tag}.jsonl")
    inv = Inversion(obj, checkpoint=ck, log_jsonl=jl)
    res = inv.run(x0=x0, resume=resume)
    post = posterior(setup.model.parameters, res["x"], res["objective"], res["hessian"], obj.n_obs,
                     setup.cfg["inversion"].get("noise_scale", "code"))
    state = obj.state_to_natural()
    diag = p_diagnostics(setup.model, setup.grid, state, setup.obs)
    obj.destroy()
    return {"result": res, "posterior": post, "diagnostics": diag, "state": state}


def _npp_fit(s2, npp):
    y = 1.0 / np.asarray(npp)
    A = np.vstack([np.ones_like(s2), s2]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    pred = A @ coef
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum() if len(y) > 2 else float("nan")
    return {"a": float(coef[0]), "b": float(coef[1]), "r2": float(r2)}


def sigma2_sweep(cfg: dict, out_dir: str, resume: bool = False, json_path: str | None = None) -> dict:
    comm = PETSc.COMM_WORLD
    rank0 = comm.getRank() == 0
    if rank0:
        os.makedirs(out_dir, exist_ok=True)
    comm.tompi4py().Barrier()
    setup = PSetup(cfg, comm)
    runs_spec = [(s2, None, None) for s2 in cfg["experiment"]["sigma2_values"]]
    if cfg["experiment"].get("sensitivity_runs", True):
        runs_spec += [(0.5, 1.0 / (24 * 3600.0), None), (0.5, None, 1.0 / (60 * 86400.0))]
    kl0 = setup.model.parameters["kappa_l"].value
    kp0 = setup.model.parameters["kappa_p"].value
    done_path = os.path.join(out_dir, "runs_done.json")
    done = {}
    if resume and os.path.exists(done_path):
        with open(done_path) as fh:
            done = json.load(fh)
    runs = []
    x_prev = None
    grid = setup.grid
    maps = []
    for s2, kl, kp in runs_spec:
        tag = f"s2_{s2:.2f}" + ("_kl24h" if kl else "") + ("_kp60d" if kp else "")
        setup.model.parameters.set(sigma2=s2, kappa_l=kl or kl0, kappa_p=kp or kp0)
        if tag in done:
            rec = done[tag]
            runs.append(rec)
            setup.model.parameters.set_x(rec["x"])
            x_prev = np.array(rec["x"])
            maps.append(np.array(rec["npp_map"]))
            rprint(f"run {tag}: already done (resume)")
            continue
        rprint(f"run {tag}: sigma2 = {s2}, kappa_l = {1 / (kl or kl0) / 3600:.0f} h, kappa_p = {1 / (kp or kp0) / 86400:.0f} d")
        out = run_inversion(setup, out_dir, tag, resume=resume, x0=x_prev)
        res, post, diag = out["result"], out["posterior"], out["diagnostics"]
        x_prev = res["x"]
        rec = {"tag": tag, "sigma2": s2, "kappa_l_per_s": kl or kl0, "kappa_p_per_s": kp or kp0,
               "npp_pg_c_per_yr": diag["npp_pg_c_per_yr"], "npp_pop_pg_c_per_yr": diag["npp_pop_pg_c_per_yr"],
               "npp_dops_pg_c_per_yr": diag["npp_dops_pg_c_per_yr"], "npp_dopl_pg_c_per_yr": diag["npp_dopl_pg_c_per_yr"],
               "pop_export_pg_c_per_yr": diag["pop_export_pg_c_per_yr"], "r2_dip": diag["r2_dip"],
               "rmse_dip_mmol_m3": diag["rmse_dip_mmol_m3"], "iterations": int(res["iterations"]),
               "objective": float(res["objective"]), "x": [float(v) for v in res["x"]],
               "parameters": {n: {"value": v["value"], "sigma": v["sigma"], "units": v["units"],
                                  "lower_1sigma": v["lower_1sigma"], "upper_1sigma": v["upper_1sigma"]}
                              for n, v in post["parameters"].items()},
               "best_constrained": post["eigen"]["best_constrained"],
               "worst_constrained": post["eigen"]["worst_constrained"],
               "p_budget_relative_imbalance": diag["p_budget"]["relative_imbalance"],
               "npp_map": np.nan_to_num(diag["npp_map_mg_c_m2_d"], nan=-1.0).tolist()}
        runs.append(rec)
        maps.append(np.array(rec["npp_map"]))
        done[tag] = rec
        if rank0:
            write_text_atomic(done_path, json.dumps(done))
        rprint(f"  -> NPP {rec['npp_pg_c_per_yr']:.2f} Pg C/yr, R2(DIP) {rec['r2_dip']:.4f}, "
               f"{rec['iterations']} iterations")
    main = [r for r in runs if r["tag"].startswith("s2_") and "_k" not in r["tag"]]
    fit = _npp_fit(np.array([r["sigma2"] for r in main]), [r["npp_pg_c_per_yr"] for r in main])
    summary = {"runs": [{k: v for k, v in r.items() if k not in ("npp_map", "x", "best_constrained",
                                                                  "worst_constrained", "objective", "tag")}
                        for r in runs], "fit": fit,
               "world": setup.world.source, "observations": setup.obs_info,
               "model_variant": setup.model.variant, "config": cfg}
    if rank0:
        _write_outputs(out_dir, runs, maps, fit, grid, summary)
        if json_path:
            write_text_atomic(json_path, json.dumps({"runs": summary["runs"], "fit": fit}, indent=2) + "\n")
    setup.system.destroy()
    return {"runs": runs, "fit": fit, "summary": summary, "setup_info": setup.obs_info}


def _write_outputs(out_dir, runs, maps, fit, grid, summary):
    names = list(runs[0]["parameters"])
    # Table S1 (parameters) and S2 (allocation) as CSV
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["run", "sigma2", "kappa_l_per_s", "kappa_p_per_s"] + sum(([n, f"{n}_sigma", f"{n}_units"] for n in names), []))
    for r in runs:
        w.writerow([r["tag"], r["sigma2"], r["kappa_l_per_s"], r["kappa_p_per_s"]] +
                   sum(([r["parameters"][n]["value"], r["parameters"][n]["sigma"], r["parameters"][n]["units"]]
                        for n in names), []))
    write_text_atomic(os.path.join(out_dir, "table_S1_parameters.csv"), buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["run", "sigma2", "npp_pg_c_per_yr", "npp_pop_pg_c_per_yr", "npp_dops_pg_c_per_yr",
                "npp_dopl_pg_c_per_yr", "pop_export_pg_c_per_yr", "r2_dip", "iterations"])
    for r in runs:
        w.writerow([r["tag"], r["sigma2"], r["npp_pg_c_per_yr"], r["npp_pop_pg_c_per_yr"], r["npp_dops_pg_c_per_yr"],
                    r["npp_dopl_pg_c_per_yr"], r["pop_export_pg_c_per_yr"], r["r2_dip"], r["iterations"]])
    write_text_atomic(os.path.join(out_dir, "table_S2_allocation.csv"), buf.getvalue())
    write_text_atomic(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2, default=float) + "\n")
    # HDF5 readable by xarray: dimension scales with names, units attributes
    with atomic_path(os.path.join(out_dir, "sigma2_sweep.h5"), ".h5") as tmp:
        with h5py.File(tmp, "w") as h:
            nr = len(runs)
            run = h.create_dataset("run", data=np.arange(nr))
            run.make_scale("run")
            lat = h.create_dataset("lat", data=grid.lat)
            lat.attrs["units"] = "degrees_north"
            lat.make_scale("lat")
            lon = h.create_dataset("lon", data=grid.lon)
            lon.attrs["units"] = "degrees_east"
            lon.make_scale("lon")

            def var(name, data, units, dims):
                d = h.create_dataset(name, data=data)
                d.attrs["units"] = units
                for i, dim in enumerate(dims):
                    d.dims[i].attach_scale(h[dim])
                return d

            var("sigma2", [r["sigma2"] for r in runs], "1", ["run"])
            for k in ("npp_pg_c_per_yr", "npp_pop_pg_c_per_yr", "npp_dops_pg_c_per_yr", "npp_dopl_pg_c_per_yr",
                      "pop_export_pg_c_per_yr"):
                var(k, [r[k] for r in runs], "Pg C yr-1", ["run"])
            var("r2_dip", [r["r2_dip"] for r in runs], "1", ["run"])
            var("kappa_l", [r["kappa_l_per_s"] for r in runs], "s-1", ["run"])
            var("kappa_p", [r["kappa_p_per_s"] for r in runs], "s-1", ["run"])
            for n in names:
                var(n, [r["parameters"][n]["value"] for r in runs], runs[0]["parameters"][n]["units"], ["run"])
                var(n + "_sigma", [r["parameters"][n]["sigma"] for r in runs], runs[0]["parameters"][n]["units"], ["run"])
            m = np.array(maps)
            m[m < 0] = np.nan
            var("npp_map", m, "mg C m-2 d-1", ["run", "lat", "lon"])
            h.attrs["fit_a"] = fit["a"]
            h.attrs["fit_b"] = fit["b"]
            h.attrs["fit_r2"] = fit["r2"]
            h.attrs["fit_form"] = "NPP = 1 / (a + b sigma2), NPP in Pg C yr-1"


def print_sweep(result, truth=None):
    runs = result["runs"]
    if truth:
        r0 = runs[0]
        rprint("\nTwin experiment at sigma2 = 0 (observations from known parameters + noise):")
        rprint(f"  {'parameter':10s} {'true':>12s} {'recovered':>12s} {'+-1 sigma':>12s} {'|dev|/sigma':>11s}")
        for n, v in r0["parameters"].items():
            t = truth.get(n)
            dev = abs(v["value"] - t) / v["sigma"] if t is not None and v["sigma"] > 0 else float("nan")
            rprint(f"  {n:10s} {t:12.4g} {v['value']:12.4g} {v['sigma']:12.3g} {dev:11.2f}")
    rprint("\nsigma2 sweep (Table S2 analogue):")
    rprint(f"  {'run':18s} {'NPP':>8s} {'POP':>8s} {'DOPs':>8s} {'DOPl':>8s} {'export':>8s} {'R2 DIP':>8s} {'its':>4s}   (Pg C/yr)")
    for r in runs:
        rprint(f"  {r['tag']:18s} {r['npp_pg_c_per_yr']:8.2f} {r['npp_pop_pg_c_per_yr']:8.2f} "
               f"{r['npp_dops_pg_c_per_yr']:8.2f} {r['npp_dopl_pg_c_per_yr']:8.2f} {r['pop_export_pg_c_per_yr']:8.2f} "
               f"{r['r2_dip']:8.4f} {r['iterations']:4d}")
    f = result["fit"]
    rprint(f"  NPP(sigma2) = 1/({f['a']:.4f} + ({f['b']:.4f}) sigma2), R2 = {f['r2']:.4f}")
