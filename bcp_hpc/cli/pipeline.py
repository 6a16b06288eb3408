"""``bcp-hpc run``, ``experiment sigma2-sweep`` and ``invert``."""
from __future__ import annotations

import json
import os

from ..config import apply_solver_options, load_config
from ..diagnostics.age import age_summary, ideal_age
from ..grid.distributed import DistributedGrid
from ..io.atomic import write_text_atomic
from ..log import rprint
from ..operators.transport import conservation_defects
from ..operators.world import load_world
from ..petsc_env import import_petsc4py

PETSc = import_petsc4py()


def _config(args) -> dict:
    over = {}
    if args.world:
        over.setdefault("world", {})["source"] = args.world
    if args.data or args.operator:
        over.setdefault("world", {})["path"] = args.data or args.operator
    if args.world == "ocim2-mask" and not (args.data or args.operator):
        from ..operators.world import default_shared_data_dir
        over["world"]["path"] = default_shared_data_dir() or ""
    if getattr(args, "inputs", None):
        over.setdefault("world", {})["inputs"] = args.inputs
    if args.sigma2:
        over.setdefault("experiment", {})["sigma2_values"] = [float(v) for v in args.sigma2.split(",")]
    if args.no_sensitivity_runs:
        over.setdefault("experiment", {})["sensitivity_runs"] = False
    over.setdefault("output", {})["dir"] = args.out
    if getattr(args, "cycle", None):
        over.setdefault("model", {})["cycle"] = args.cycle
    cfg = load_config(args.config, over)
    apply_solver_options(cfg)
    if cfg["inversion"].get("max_it"):
        opts = PETSc.Options()
        if not opts.hasName("inv_tao_max_it"):
            opts.setValue("inv_tao_max_it", str(cfg["inversion"]["max_it"]))
        if not opts.hasName("inv_tao_type"):
            opts.setValue("inv_tao_type", cfg["inversion"]["tao_type"])
    return cfg


def _save_config(cfg, out):
    if PETSc.COMM_WORLD.getRank() == 0:
        os.makedirs(out, exist_ok=True)
        write_text_atomic(os.path.join(out, "resolved_config.json"), json.dumps(cfg, indent=2) + "\n")


def run(args):
    """Main job: circulation check (ideal age), then the twin-experiment sigma2 sweep."""
    cfg = _config(args)
    comm = PETSc.COMM_WORLD
    w = cfg["world"]
    world = load_world(w["source"], w.get("path") or None, inputs=w.get("inputs") or None)
    grid = world.grid
    rprint(f"world: {world.source}; {grid.summary()}; {comm.getSize()} rank(s)")
    dgrid = DistributedGrid(grid, comm)
    d = conservation_defects(world.T, grid.box_volume)
    rprint(f"transport conservation: row-sum {d['row_sum_rel']:.2e}, 1^T V T {d['volume_column_sum_rel']:.2e}")
    Tp = dgrid.matrix_from_scipy(world.T)
    age = ideal_age(dgrid, Tp)
    Tp.destroy()
    rprint("ideal age (years): " + ", ".join(f"{k} {v:.0f}" for k, v in age_summary(grid, age).items()))
    return sweep(args, cfg)


def sweep(args, cfg=None):
    from ..reports.p_experiments import print_sweep, sigma2_sweep
    cfg = cfg or _config(args)
    _save_config(cfg, args.out)
    v = cfg["model"]
    rprint(f"P model variant: POP -> {v['pop_to']} (paper default: DOPs), uptake form {v['uptake']} (W19 default); "
           f"observations: {cfg['observations']['dip']}")
    res = sigma2_sweep(cfg, args.out, resume=args.resume, json_path=args.json)
    truth = res["setup_info"].get("truth")
    print_sweep(res, truth)
    rprint(f"\nresults: {args.out}/sigma2_sweep.h5, table_S1_parameters.csv, table_S2_allocation.csv, summary.json")
    return 0


def invert(args):
    from ..reports.p_experiments import PSetup, run_inversion
    cfg = _config(args)
    _save_config(cfg, args.out)
    if cfg["model"]["cycle"] == "PCO":
        return invert_joint(cfg, args)
    if cfg["model"]["cycle"] != "P":
        from ..errors import ConfigError
        raise ConfigError(f"[model] cycle must be 'P' or 'PCO', got {cfg['model']['cycle']!r}")
    setup = PSetup(cfg)
    out = run_inversion(setup, args.out, "single", resume=args.resume)
    res, post, diag = out["result"], out["posterior"], out["diagnostics"]
    rprint(f"converged in {res['iterations']} iterations (TAO reason {res['reason']}), objective {res['objective']:.6e}")
    for n, v in post["parameters"].items():
        flags = ("  (at a bound)" if v.get("at_bound") else "") + \
            ("  (not constrained by the data)" if v.get("poorly_constrained") else "")
        rprint(f"  {n:8s} {v['value']:.5g} +- {v['sigma']:.3g} {v['units']}  "
               f"[{v['lower_1sigma']:.4g}, {v['upper_1sigma']:.4g}]{flags}")
    rprint(f"  best-constrained combination: {post['eigen']['best_constrained']}")
    rprint(f"  worst-constrained combination: {post['eigen']['worst_constrained']}")
    rprint(f"model NPP {diag['npp_pg_c_per_yr']:.2f} Pg C/yr, R2(DIP) {diag['r2_dip']:.4f}")
    payload = {"iterations": res["iterations"], "objective": res["objective"], "parameters": post["parameters"],
               "eigen": post["eigen"], "npp_pg_c_per_yr": diag["npp_pg_c_per_yr"], "r2_dip": diag["r2_dip"],
               "config": cfg}
    if PETSc.COMM_WORLD.getRank() == 0:
        write_text_atomic(os.path.join(args.out, "result.json"), json.dumps(payload, indent=2, default=float) + "\n")
        if args.json:
            write_text_atomic(args.json, json.dumps(payload, indent=2, default=float) + "\n")
    setup.system.destroy()
    return 0


def invert_joint(cfg, args):
    """The joint P-C-O inversion (twin experiment), results in ``args.out``."""
    from ..reports.joint_experiments import JointSetup, report, run_joint_inversion, write_joint_outputs
    setup = JointSetup(cfg)
    rprint(f"joint model variant: {setup.model.variant}; synthetic forcing: "
           f"{setup.world.info.get('synthetic_forcing', [])}")
    out = run_joint_inversion(setup, args.out, resume=args.resume)
    payload = write_joint_outputs(setup, out, args.out, args.json)
    report(payload)
    rprint(f"results: {args.out}/joint_result.json, joint_state.h5")
    setup.system.destroy()
    return 0


def joint_products(args):
    """`bcp-hpc experiment joint-products`: the joint inversion per NPP product (spec §3.7)."""
    from ..reports.joint_experiments import joint_products as run_products
    cfg = _config(args)
    cfg["model"]["cycle"] = "PCO"
    _save_config(cfg, args.out)
    run_products(cfg, args.out, resume=args.resume, json_path=args.json)
    rprint(f"results: {args.out}/joint_products.json")
    return 0
