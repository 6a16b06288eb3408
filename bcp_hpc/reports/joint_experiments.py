"""The joint P-C-O inversion (spec §3.7, §4.2): 21 parameters fitted to DIP, DIC, ALK and O2.

Observations: ``[joint] observations = "synthetic"`` (the default, and the only source until a
user's OCIM2 transport matrix and satellite NPP make a real-data fit meaningful): a twin
experiment whose truth is the model at ``[joint] truth`` parameters (default: the BGC defaults of
spec §4.2), observed on a random ``[observations] coverage`` fraction of boxes with noise
``noise_fraction`` times each tracer's volume-weighted spatial standard deviation, drawn with the
objective's error model (variance ~ 1/V_i).  The inversion starts from the truth perturbed by
``start_perturbation`` in transformed-parameter space (seeded).

Outputs under ``out``: ``joint_result.json`` (parameters +- 1 sigma, diagnostics of spec §6, fit
statistics per tracer, variant switches), ``joint_state.h5`` (named dimensions, units), the
TAO checkpoint and the JSON-lines iteration log; all written atomically; ``resume`` continues
from the last accepted iterate.
"""
from __future__ import annotations

import json
import logging
import os

import h5py
import numpy as np

from ..diagnostics.jointmodel import joint_diagnostics
from ..errors import InputError
from ..grid.distributed import DistributedGrid
from ..inversion.objective import Objective, Observation
from ..inversion.posterior import posterior
from ..inversion.tao_driver import Inversion
from ..io.atomic import atomic_path, write_text_atomic
from ..log import rprint
from ..models.jointmodel import joint_model
from ..models.system import ModelSystem
from ..operators.world import load_world
from ..petsc_env import import_petsc4py
from ..solvers.steady import SteadyState
from .p_experiments import synthetic_observations

PETSc = import_petsc4py()
log = logging.getLogger(__name__)
DIP_MEAN_SYNTHETIC = 2.1     #: mmol m-3, the P inventory of the twin experiments
JOINT_GRTOL = "2e-3"         #: TAO stops when |g| < JOINT_GRTOL |f|


class JointSetup:
    """World, distributed grid, joint model, truth and observations for a configuration."""

    def __init__(self, cfg: dict, comm=None):
        self.cfg = cfg
        self.comm = comm or PETSc.COMM_WORLD
        w = cfg["world"]
        jc = cfg["joint"]
        if jc["observations"] != "synthetic":
            raise InputError(f"[joint] observations = {jc['observations']!r}: only 'synthetic' (twin experiment) "
                             "is available; real DIC/ALK/O2 fits need a real transport matrix ([world] source = ocim2)")
        self.world = load_world(w["source"], w.get("path") or None, inputs=w.get("inputs") or None)
        self.grid = self.world.grid
        self.dgrid = DistributedGrid(self.grid, self.comm)
        self.product = w.get("npp_product") or next(iter(self.world.npp_products))
        self.npp = self.world.npp(self.product)
        self.labile = bool(cfg["model"].get("labile", True))
        self.model, self.system = self.model_for(self.product)
        self.truth = {p.name: p.value for p in self.model.parameters}
        self.truth.update({k: float(v) for k, v in jc.get("truth", {}).items()})
        self.obs = self._observations()
        self.traps3d = self._traps()

    def model_for(self, product: str):
        """The joint model and its system forced by NPP product ``product`` (same world, grid, data)."""
        model = joint_model(self.world, self.world.npp(product), DIP_MEAN_SYNTHETIC, labile=self.labile)
        model.parameters.update_from(self.cfg.get("parameters", {}), "config [parameters]")
        return model, ModelSystem(model, self.dgrid, self.world.T)

    def _traps(self):
        """Sediment-trap POC flux per box (Mouw et al. 2016 binned, mg C m-2 d-1) when the world's data
        folder has it (real OCIM2 mask), else None: the synthetic worlds have no trap stations."""
        path = os.path.join(self.cfg["world"].get("path") or "", "Mouw_POC_91x180x24.mat")
        if self.world.source != "ocim2-mask" or not os.path.exists(path):
            return None
        from ..io import matfile
        raw = np.asarray(matfile.get(matfile.load(path, ["POC_flux"]), "POC_flux", path), dtype=float)
        raw[(raw < 0) | ~self.grid.mask] = np.nan           # -9.999 = no data; land boxes carry values too
        return raw

    def _observations(self) -> dict:
        oc, jc = self.cfg["observations"], self.cfg["joint"]
        ps = self.model.parameters
        saved = {p.name: p.value for p in ps}
        ps.set(**self.truth)
        with SteadyState(self.system, prefix="truth_") as ss:
            ss.solve()
            truth_state = self.system.to_natural(ss.u)
        ps.set(**saved)
        self.truth_state = truth_state
        V = self.grid.box_volume
        obs = {}
        for k, name in enumerate(jc["observed"]):
            if name not in self.model.tracer_names:
                raise InputError(f"[joint] observed tracer {name!r} is not a joint-model tracer "
                                 f"({self.model.tracer_names})")
            field = truth_state[self.model.tracer_names.index(name)]
            mean = (field * V).sum() / V.sum()
            std = float(np.sqrt((V * (field - mean) ** 2).sum() / V.sum()))
            obs[name], _ = synthetic_observations(field, V, float(jc["noise_fraction"]) * std, float(oc["coverage"]),
                                                  int(oc["seed"]) + k, oc.get("noise_model", "likelihood"))
        return obs

    def start(self) -> np.ndarray:
        """Transformed starting parameters: the truth perturbed by ``start_perturbation`` (seeded)."""
        ps = self.model.parameters
        saved = {p.name: p.value for p in ps}
        ps.set(**self.truth)
        x_true = ps.get_x()
        ps.set(**saved)
        rng = np.random.default_rng(int(self.cfg["observations"]["seed"]) + 1000)
        x0 = x_true + float(self.cfg["joint"]["start_perturbation"]) * rng.standard_normal(x_true.size)
        for k, name in enumerate(ps.optimized):
            lo, hi = ps[name].bounds
            par = ps[name]
            x_lo = par.to_x(lo) if (par.transform != "log" or lo > 0) else -np.inf
            x_hi = par.to_x(hi) if np.isfinite(hi) else np.inf
            x0[k] = float(np.clip(x0[k], x_lo + 1e-9 * abs(x_lo), x_hi - 1e-9 * abs(x_hi)))
        return x0, x_true


def run_joint_inversion(setup: JointSetup, out_dir: str, resume: bool = False, tag: str = "joint",
                        model=None, system=None) -> dict:
    """One joint inversion (the setup's own model, or ``model``/``system`` forced by another product)."""
    cfg = setup.cfg
    model = model or setup.model
    system = system or setup.system
    obs = [Observation(name, values, source="synthetic") for name, values in setup.obs.items()]
    obj = Objective(system, obs, hessian=cfg["inversion"].get("hessian", "adjoint"))
    ck = os.path.join(out_dir, f"checkpoint_{tag}.h5")
    jl = os.path.join(out_dir, f"iterations_{tag}.jsonl")
    x0, x_true = setup.start()
    rprint(f"joint P-C-O inversion '{tag}': {system.npar} parameters, {system.nt} tracers x "
           f"{setup.grid.nwet} boxes, observed {', '.join(setup.obs)} ({obj.n_obs} boxes)")
    # poorly constrained directions (DOC_r removal rates) keep |g| above an absolute tolerance long
    # after the fit has converged: stop when |g| < 2e-3 |f| (-inv_tao_grtol overrides; a relative
    # criterion on the current f, so a resumed run stops where the uninterrupted one did)
    inv = Inversion(obj, checkpoint=ck, log_jsonl=jl, tao_defaults={"tao_grtol": JOINT_GRTOL})
    res = inv.run(x0=x0, resume=resume)
    post = posterior(model.parameters, res["x"], res["objective"], res["hessian"], obj.n_obs,
                     cfg["inversion"].get("noise_scale", "code"))
    state = obj.state_to_natural()
    diag = joint_diagnostics(model, setup.grid, state, setup.dgrid, setup.world.T, setup.obs,
                             npp_products=setup.world.npp_products, traps3d=setup.traps3d)
    obj.destroy()
    ps = model.parameters
    names = ps.optimized
    z = {}
    for k, name in enumerate(names):
        sig = post["parameters"][name].get("sigma_x")
        if sig:
            z[name] = float((res["x"][k] - x_true[k]) / sig)
    return {"result": res, "posterior": post, "diagnostics": diag, "state": state, "x_true": x_true, "z": z}


def write_joint_outputs(setup: JointSetup, out: dict, out_dir: str, json_path: str | None = None) -> dict:
    """``joint_result.json`` and ``joint_state.h5`` (rank 0, atomic); returns the JSON payload."""
    res, post, diag = out["result"], out["posterior"], out["diagnostics"]
    scalars = {k: v for k, v in diag.items() if not isinstance(v, np.ndarray)}
    payload = {"model": setup.model.name, "variant": setup.model.variant,
               "world": setup.world.source, "synthetic_forcing": setup.world.info.get("synthetic_forcing", []),
               "iterations": int(res["iterations"]), "objective": float(res["objective"]),
               "tao_reason": res.get("reason"), "parameters": post["parameters"], "eigen": post["eigen"],
               "truth": {n: setup.truth[n] for n in setup.model.parameters.optimized},
               "z_from_truth": out["z"], "diagnostics": scalars}
    if setup.comm.getRank() == 0:
        text = json.dumps(payload, indent=2, default=float) + "\n"
        write_text_atomic(os.path.join(out_dir, "joint_result.json"), text)
        if json_path:
            write_text_atomic(json_path, text)
        with atomic_path(os.path.join(out_dir, "joint_state.h5")) as tmp:
            with h5py.File(tmp, "w") as h:
                h.attrs["model"] = setup.model.description
                h.attrs["variant"] = json.dumps(setup.model.variant, default=float)
                for a, tr in enumerate(setup.model.tracers):
                    d = h.create_dataset(f"state/{tr.name}", data=out["state"][a])
                    d.attrs["units"] = tr.units
                    d.attrs["description"] = tr.description
                    d.attrs["dimension"] = "wet box (natural order)"
                for name, values in setup.obs.items():
                    h.create_dataset(f"observations/{name}", data=values).attrs["units"] = "mmol m-3"
                for key in ("poc_export_map_mg_c_m2_d", "poc_flux_100m_map_mg_c_m2_d"):
                    d = h.create_dataset(f"maps/{key}", data=diag[key])
                    d.attrs["units"] = "mg C m-2 d-1"
                    d.attrs["dimensions"] = "lat, lon"
    return payload


def report(payload: dict):
    d = payload["diagnostics"]
    word = "converged" if (payload.get("tao_reason") or 0) > 0 else "stopped (not converged)"
    rprint(f"{word} after {payload['iterations']} iterations (TAO reason {payload.get('tao_reason')}), "
           f"objective {payload['objective']:.6e}")
    for n, v in payload["parameters"].items():
        zs = payload["z_from_truth"].get(n)
        flags = ("  (at a bound)" if v.get("at_bound") else "") + \
            ("  (not constrained by the data)" if v.get("poorly_constrained") else "")
        rprint(f"  {n:6s} {v['value']:.5g} +- {v['sigma']:.3g} {v['units']}  truth {payload['truth'][n]:.5g}"
               + (f"  ({zs:+.2f} sigma)" if zs is not None else "") + flags)
    rprint(f"model NPP {d['npp_model_pg_c_per_yr']:.2f} of satellite {d['npp_satellite_pg_c_per_yr']:.2f} Pg C/yr; "
           f"DOC_l production {d['docl_production_pg_c_per_yr']:.2f}")
    rprint(f"export at the euphotic base (Pg C/yr): POC {d['poc_export_pg_c_per_yr']:.3f}, "
           f"DOC_s {d['docs_export_pg_c_per_yr']:.3f} (adjoint {d.get('docs_export_adjoint_pg_c_per_yr', float('nan')):.3f}), "
           f"DOC_l {d['docl_export_pg_c_per_yr']:.3f} (adjoint {d.get('docl_export_adjoint_pg_c_per_yr', float('nan')):.3f}), "
           f"TOC {d['toc_export_pg_c_per_yr']:.3f}; north of 30 S: TOC {d['toc_export_north_of_30s_pg_c_per_yr']:.3f}")
    rprint(f"POC flux at 100 m {d['poc_flux_100m_pg_c_per_yr']:.3f} Pg C/yr; Henson (2011) with the NPP products: "
           + ", ".join(f"{k} {v:.2f}" for k, v in d.get("henson_f100_pg_c_per_yr", {}).items()))
    if "traps" in d and "taylor" in d["traps"]:
        t = d["traps"]["taylor"]
        rprint(f"trap stations {', '.join(d['traps']['used'])}: r {t['r']:.2f}, centred RMSD {t['crmsd']:.1f}, "
               f"std model {t['std_model']:.1f} / obs {t['std_obs']:.1f} mg C m-2 d-1")
    for name, st in d.get("fit", {}).items():
        rprint(f"  fit {name:4s}: R2 {st['r2']:.4f}, RMSE {st['rmse_mmol_m3']:.4g} mmol m-3 ({st['n_obs']} boxes)")


#: totals compared across NPP products (spec §7: mean +- sample std over the three joint runs)
PRODUCT_TOTALS = ("npp_satellite_pg_c_per_yr", "npp_model_pg_c_per_yr", "docl_production_pg_c_per_yr",
                  "poc_export_pg_c_per_yr", "docs_export_pg_c_per_yr", "docl_export_pg_c_per_yr",
                  "toc_export_pg_c_per_yr", "docl_export_north_of_30s_pg_c_per_yr",
                  "toc_export_north_of_30s_pg_c_per_yr", "poc_flux_100m_pg_c_per_yr")


def joint_products(cfg: dict, out_dir: str, resume: bool = False, json_path: str | None = None) -> dict:
    """Spec §3.7: the joint inversion forced by each NPP product of ``[joint] npp_products`` against the
    same observations, totals as mean +- sample std (n - 1), and the cross experiment X (the last
    product's forcing with the second product's optimal parameters, no re-optimisation)."""
    comm = PETSc.COMM_WORLD
    if comm.getRank() == 0:
        os.makedirs(out_dir, exist_ok=True)
    comm.tompi4py().Barrier()
    setup = JointSetup(cfg, comm)
    products = list(cfg["joint"]["npp_products"])
    missing = [p for p in products if p not in setup.world.npp_products]
    if missing:
        raise InputError(f"[joint] npp_products {missing} not in the world (have {sorted(setup.world.npp_products)})")
    runs = {}
    for prod in products:
        model, system = setup.model_for(prod)
        out = run_joint_inversion(setup, out_dir, resume=resume, tag=f"joint_{prod}", model=model, system=system)
        d = out["diagnostics"]
        runs[prod] = {"iterations": int(out["result"]["iterations"]), "objective": float(out["result"]["objective"]),
                      "x": [float(v) for v in out["result"]["x"]],
                      "parameters": {n: {"value": v["value"], "sigma": v["sigma"], "units": v["units"]}
                                     for n, v in out["posterior"]["parameters"].items()},
                      **{k: float(d[k]) for k in PRODUCT_TOTALS},
                      "fit_r2": {t: st["r2"] for t, st in d.get("fit", {}).items()}}
        rprint(f"{prod}: TOC export {d['toc_export_pg_c_per_yr']:.3f} Pg C/yr (POC {d['poc_export_pg_c_per_yr']:.3f}, "
               f"DOC_s {d['docs_export_pg_c_per_yr']:.3f}, DOC_l {d['docl_export_pg_c_per_yr']:.3f}); "
               f"DOC_l production {d['docl_production_pg_c_per_yr']:.2f}")
        system.destroy()
    stats = {}
    for k in PRODUCT_TOTALS:
        vals = np.array([runs[p][k] for p in products])
        stats[k] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}
    cross = None
    if len(products) >= 2:
        forcing, params_from = products[-1], products[1] if len(products) > 2 else products[0]
        model, system = setup.model_for(forcing)
        model.parameters.set_x(np.array(runs[params_from]["x"]))
        with SteadyState(system, prefix="cross_") as ss:
            ss.solve()
            state = system.to_natural(ss.u)
        d = joint_diagnostics(model, setup.grid, state)
        cross = {"forcing": forcing, "parameters_from": params_from,
                 "docl_export_pg_c_per_yr": float(d["docl_export_pg_c_per_yr"]),
                 "docl_export_optimal_pg_c_per_yr": runs[forcing]["docl_export_pg_c_per_yr"]}
        system.destroy()
        rprint(f"cross experiment: {forcing} forcing with the {params_from} optimum: DOC_l export "
               f"{cross['docl_export_pg_c_per_yr']:.3f} vs {cross['docl_export_optimal_pg_c_per_yr']:.3f} optimal")
    payload = {"products": products, "runs": runs, "mean_std": stats, "cross_experiment": cross,
               "world": setup.world.source, "variant": setup.model.variant}
    for k in ("toc_export_pg_c_per_yr", "docl_export_pg_c_per_yr", "docl_production_pg_c_per_yr",
              "npp_satellite_pg_c_per_yr"):
        rprint(f"  {k}: {stats[k]['mean']:.3f} +- {stats[k]['std']:.3f}")
    if comm.getRank() == 0:
        text = json.dumps(payload, indent=2, default=float) + "\n"
        write_text_atomic(os.path.join(out_dir, "joint_products.json"), text)
        if json_path:
            write_text_atomic(json_path, text)
    setup.system.destroy()
    return payload
