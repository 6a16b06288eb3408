"""``bcp-hpc bench invert``: a full 4-parameter twin inversion; iterations, time per iteration, memory."""
from __future__ import annotations

from ..config import apply_solver_options, load_config
from ..log import rprint
from ..operators.world import default_shared_data_dir
from ..reports.p_experiments import PSetup, run_inversion
from .common import PETSc, PhaseTimer, write_json


def run(args):
    comm = PETSc.COMM_WORLD
    over = {"world": {"source": "embedded"}}
    if args.ocim2:
        d = args.data or default_shared_data_dir()
        over = {"world": {"source": "ocim2-mask" if d else "generated-2deg", "path": d or ""}}
        if d:
            over["observations"] = {"dip": "glodap"}
    if args.solver:
        over["solver"] = {"steady_solver": args.solver}
    cfg = load_config(None, over)
    apply_solver_options(cfg)
    timer = PhaseTimer()
    with timer.phase("setup (world, model, observations)"):
        setup = PSetup(cfg, comm)
    import tempfile
    out = tempfile.mkdtemp() if comm.getRank() == 0 else None
    out = comm.tompi4py().bcast(out)
    with timer.phase("inversion"):
        res = run_inversion(setup, out, "bench")
    its = res["result"]["iterations"]
    evals = res["result"]["evaluations"]
    timer.report(f"bench invert: {setup.world.source}, {4 * setup.grid.nwet} unknowns, {comm.getSize()} rank(s)")
    per_it = timer.seconds["inversion"] / max(its, 1)
    rprint(f"iterations {its}, objective evaluations {evals}, {per_it:.2f} s per iteration, "
           f"{timer.seconds['inversion'] / max(evals, 1):.2f} s per evaluation (f + gradient; Hessian at accepted iterates)")
    solver_path = PETSc.Options().getString("steady_solver", "direct")
    rprint(f"steady-state solver path: {solver_path}")
    payload = {"benchmark": "invert", "source": setup.world.source, "ranks": comm.getSize(), "solver": solver_path,
               "unknowns": 4 * setup.grid.nwet, "iterations": its, "evaluations": evals, "seconds": timer.seconds,
               "seconds_per_iteration": per_it, "peak_rss_bytes": max(timer.peak_rss.values())}
    write_json(args.json, payload)
    setup.system.destroy()
    return 0
