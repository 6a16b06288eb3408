"""``bcp-hpc bench invert``: a full 4-parameter twin inversion; iterations, time per iteration, memory."""
from __future__ import annotations

from ..experiments.description import RunDescription
from ..experiments.runner import Setup, run_inversion
from ..log import rprint
from ..operators.world import default_shared_data_dir
from ..solvers.options import OptionsScope
from .common import PETSc, PhaseTimer, write_json


def run(args):
    comm = PETSc.COMM_WORLD
    over = {"world": {"source": getattr(args, "world", None) or "embedded"}}
    if args.ocim2:
        d = args.data or default_shared_data_dir()
        over = {"world": {"source": "ocim2-mask" if d else "generated-2deg", "path": d or ""}}
        if d:
            over["observations"] = {"dip": "glodap"}
    if args.solver:
        over["solver"] = {"steady_solver": args.solver}
    run_ = RunDescription.load(None, over)
    with OptionsScope("", dict(run_.solver)):
        package = _one(run_, comm, "package")
    payload = {"benchmark": "invert", "source": package["source"], "ranks": comm.getSize(),
               "solver": package["solver"], "hessian": package["hessian"], "unknowns": package["unknowns"],
               "iterations": package["iterations"], "evaluations": package["evaluations"],
               "seconds": package["seconds"], "seconds_per_iteration": package["seconds_per_iteration"],
               "peak_rss_bytes": package["peak_rss_bytes"], "objective": package["objective"]}
    if args.baseline:
        base_run = run_.with_overrides({"inversion": {"hessian": "forward"}})
        with OptionsScope("", overrides={"steady_solver": "direct", "inv_tao_bnk_init_type": "interpolation"}):
            base = _one(base_run, comm, "baseline")
        t_pkg, t_base = package["seconds"]["inversion"], base["seconds"]["inversion"]
        payload.update({"baseline": "monolithic MUMPS LU, forward second-order sensitivities, TAO interpolation start",
                        "baseline_seconds": t_base, "baseline_iterations": base["iterations"],
                        "baseline_peak_rss_bytes": base["peak_rss_bytes"], "speedup_vs_baseline": t_base / t_pkg,
                        "objective_rel_diff_vs_baseline":
                            abs(package["objective"] - base["objective"]) / abs(base["objective"])})
        rprint(f"speedup_vs_baseline {t_base / t_pkg:.2f} (baseline {t_base:.1f} s in {base['iterations']} iterations, "
               f"package {t_pkg:.1f} s in {package['iterations']}); objectives differ by "
               f"{payload['objective_rel_diff_vs_baseline']:.1e} relative")
    write_json(args.json, payload)
    return 0


def _one(run_, comm, label):
    timer = PhaseTimer()
    with timer.phase("setup (world, model, observations)"):
        setup = Setup(run_, comm)
    import tempfile
    out = tempfile.mkdtemp() if comm.getRank() == 0 else None
    out = comm.tompi4py().bcast(out)
    with timer.phase("inversion"):
        res = run_inversion(setup, out, "bench")
    its = res["result"]["iterations"]
    evals = res["result"]["evaluations"]
    solver_path = PETSc.Options().getString("steady_solver", "direct")
    hessian = run_.inversion.hessian
    timer.report(f"bench invert ({label}): {setup.world.source}, {4 * setup.grid.nwet} unknowns, "
                 f"{comm.getSize()} rank(s), solver {solver_path}, {hessian} Hessian")
    per_it = timer.seconds["inversion"] / max(its, 1)
    rprint(f"iterations {its}, objective evaluations {evals}, {per_it:.2f} s per iteration, "
           f"{timer.seconds['inversion'] / max(evals, 1):.2f} s per evaluation (f + gradient; Hessian at accepted iterates)")
    out = {"source": setup.world.source, "solver": solver_path, "hessian": hessian, "unknowns": 4 * setup.grid.nwet,
           "iterations": its, "evaluations": evals, "seconds": dict(timer.seconds), "seconds_per_iteration": per_it,
           "peak_rss_bytes": max(timer.peak_rss.values()), "objective": float(res["result"]["objective"])}
    setup.destroy()
    return out
