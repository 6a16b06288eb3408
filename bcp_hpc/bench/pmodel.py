"""``bcp-hpc bench pmodel``: P-model steady state and its 4 + 10 sensitivity solves at OCIM2 size.

Package path (default): the structured solver (:mod:`bcp_hpc.solvers.structured`); with
``--monolithic`` the package factors the full matrix too and only batches the sensitivities.
Problem: the real OCIM2 mask (from ../shared when present, else a generated 2 degree world)
with the synthetic circulation and synthetic NPP.  Package path: ``SteadyState`` (assemble,
one MUMPS factorization, solve, first- and second-order sensitivities as two blocks through
``MatMatSolve``).  Baseline in the same process: a direct port of the MATLAB formulation, one
monolithic MUMPS LU of the 4-tracer matrix reused for the 15 right-hand sides solved one at a
time.  Also SciPy ``splu`` of the transport operator alone, as a reference point.
"""
from __future__ import annotations

import time

import numpy as np

from ..grid.distributed import DistributedGrid
from ..log import rprint
from ..cycles.phosphorus.model import p_model
from ..models.system import ModelSystem
from ..operators.world import default_shared_data_dir, load_world
from ..solvers.linear import LinearSolver
from ..solvers.options import OptionsScope
from ..solvers.steady import SteadyState
from .common import PETSc, PhaseTimer, write_json


def _world(args):
    if args.embedded:
        return load_world("embedded")
    data = args.data or default_shared_data_dir()
    if data and not args.generated:
        return load_world("ocim2-mask", data)
    return load_world("generated-2deg")


def run(args):
    comm = PETSc.COMM_WORLD
    timer = PhaseTimer()
    with timer.phase("world"):
        world = _world(args)
        grid = world.grid
        dgrid = DistributedGrid(grid, comm)
    rprint(f"problem: {world.source}, {grid.nwet} boxes, {4 * grid.nwet} unknowns, {comm.getSize()} rank(s)")
    model = p_model(grid, world.npp("vgpm"), world.dip_gamma, 2.1, sigma2=0.2)
    with timer.phase("assemble"):
        sysm = ModelSystem(model, dgrid, world)
        u0 = dgrid.create_vec(4)
        u0.set(0.0)
        J = sysm.jacobian(u0)
    structured = not args.monolithic
    # --solver: any path of bcp_hpc.solvers.choice
    chosen = OptionsScope("bench_", overrides={"solver": args.solver} if getattr(args, "solver", None) else None)
    with chosen, SteadyState(sysm, prefix="bench_", structured=structured) as ss:
        rprint(f"package path: {ss.path}" + (" (POP exact + DOPl column-local elimination, Schur factor, block GMRES)"
                                              if ss.path == "structured" else ""))
        with timer.phase("factor + solve (package)"):
            ss.solve()
        with timer.phase("4 + 10 sensitivities (2 block solves)"):
            u1, u2 = ss.sensitivities(2)
        rprint(f"  of which first-order {ss.timings['sens1']:.3f} s, second-order {ss.timings['sens2']:.3f} s "
               f"(rank 0; right-hand sides built and solved)")
        sol_pkg = sysm.to_natural(ss.u)
        package_path = ss.path
        kept = int(sum(m.sum() for m in getattr(ss.solver, "kept", {}).values()))
        outer = list(getattr(ss.solver, "sweeps", []))
        if outer:
            rprint(f"  outer GMRES iterations per block solve: {outer}; {kept} boxes of eliminated tracers kept in S")
        sens_pkg = [sysm.to_natural(v) for v in u1]
    pkg_seconds = sum(v for k, v in timer.seconds.items() if k not in ("world",))
    pkg_rss = max(timer.peak_rss.values())
    # ---------------------------------------------------------------- baseline
    base = PhaseTimer()
    with base.phase("baseline: monolithic LU, 15 single solves"):
        J = sysm.jacobian(u0)
        F0 = sysm.residual(u0)
        F0.scale(-1.0)
        # the baseline keeps MUMPS' own ordering (no METIS from this package): what a port does
        with OptionsScope("baseline_", {"ordering": "solver"}), LinearSolver(J, "baseline_") as ls:
            x = ls.solve(F0)
            rhs = [_neg(sysm.F_x(x, i)) for i in range(sysm.npar)]
            xs = [ls.solve(b) for b in rhs]
            # 10 second-order right-hand sides, one at a time (the MATLAB loop)
            for i in range(sysm.npar):
                for j in range(i, sysm.npar):
                    r = sysm.F_xx(x, i, j)
                    r.scale(-1.0)
                    ls.solve(r).destroy()
            sol_base = sysm.to_natural(x)
            sens_base = [sysm.to_natural(v) for v in xs]
    base_seconds = base.seconds["baseline: monolithic LU, 15 single solves"]
    base_rss = max(base.peak_rss.values())
    diff = max(_rel(sol_pkg, sol_base), *[_rel(a, b) for a, b in zip(sens_pkg, sens_base)])
    # ---------------------------------------------------------------- scipy reference
    scipy_s = None
    if comm.getRank() == 0 and not args.no_scipy:
        import scipy.sparse.linalg as spl
        t0 = time.perf_counter()
        spl.splu(world.T.tocsc())
        scipy_s = time.perf_counter() - t0
    scipy_s = comm.tompi4py().bcast(scipy_s)
    timer.report("package")
    base.report("baseline")
    speed = base_seconds / pkg_seconds
    rprint(f"speedup_vs_baseline {speed:.2f} (baseline {base_seconds:.2f} s / package {pkg_seconds:.2f} s); "
           f"max relative difference of solution and sensitivities {diff:.2e}")
    rprint(f"peak RSS package {pkg_rss / 2**30:.2f} GiB, baseline {base_rss / 2**30:.2f} GiB (largest rank)")
    if scipy_s is not None:
        rprint(f"reference: SciPy splu of T alone (1 process) {scipy_s:.2f} s")
    payload = {"benchmark": "pmodel", "source": world.source, "ranks": comm.getSize(), "unknowns": 4 * grid.nwet,
               "seconds": timer.seconds, "peak_rss_bytes": pkg_rss, "baseline_seconds": base_seconds,
               "baseline_peak_rss_bytes": base_rss, "speedup_vs_baseline": speed, "max_rel_diff_vs_baseline": diff,
               "scipy_splu_T_seconds": scipy_s,
               "package_path": package_path, "kept_boxes_in_schur": kept, "gmres_iterations": outer,
               "note": "baseline: monolithic 4-tracer MUMPS LU, 15 right-hand sides one at a time"}
    write_json(args.json, payload)
    sysm.destroy()
    return 0


def _neg(v):
    v.scale(-1.0)
    return v


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
