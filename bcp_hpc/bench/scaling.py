"""``bcp-hpc bench scaling``: strong scaling and size scaling of the P-model steady state and of the
joint P-C-O model's objective evaluation.

Ladder of grids (``--rungs``): ``embedded`` (4 deg, 24 layers), ``ocim2`` (2 deg, 24 layers:
the real OCIM2 mask when ../shared has it, else generated), ``2deg48`` (2 deg, 48 layers),
``1deg48`` (1 deg, 48 layers); all with the synthetic circulation and the 4-tracer P model.
For each rung, solver path (``--solver direct|structured|ooc|auto``) and rank count
(1, 2, 4, ... ``--max-ranks``), one measurement: assembly, factorization + solve, MUMPS
factor entries and memory (INFOG(29), INFOG(21), INFOG(22)), peak RSS of the largest rank.
A rung whose estimated in-core factors exceed the machine's memory is skipped for
``direct`` with the reason (use ``ooc`` or ``structured``).

``--solver joint`` measures the joint P-C-O model (11 tracers, block-triangular Newton by
components) instead, as ``bcp-hpc bench joint`` does: the cold steady state at the default
parameters (``cold_state_s``), then one objective evaluation with gradient and Hessian from that
state at parameters 0.02 lower in log space (``factor_solve_s``, the time the ladder's efficiency
and growth are computed from), its objective (``objective``, equal on every rank count) and the
largest rank's peak.  Its rows are those of a solver named ``joint``.

Driver: without ``--single``, each rank count is launched as its own job step
(``$BCP_LAUNCH -n k``, default ``mpirun --oversubscribe`` or ``srun`` under SLURM); rows are
appended to ``--csv`` and the summary (parallel efficiency ``t1 / (k t_k)``, fitted growth
exponents of time and memory against unknowns) goes to ``--json``; a plot to ``--plot``
when matplotlib is available.
"""
from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np

from ..io.atomic import write_text_atomic
from ..log import rprint

RUNGS = {
    "tiny": dict(nlat=15, nlon=30, nz=8),          # for tests of the tooling
    "embedded": dict(nlat=45, nlon=90, nz=24),
    "ocim2": None,
    "2deg48": dict(nlat=91, nlon=180, nz=48),
    "1deg48": dict(nlat=181, nlon=360, nz=48),
}
FIELDS = ["timestamp", "rung", "grid", "wet_boxes", "unknowns", "ranks", "solver", "assemble_s", "factor_solve_s",
          "total_s", "factor_entries", "mumps_mb_max_rank", "mumps_mb_total", "peak_rss_bytes", "status", "iterations",
          "world_peak_rss_bytes", "assemble_peak_rss_bytes", "base_rss_bytes", "cold_state_s", "objective"]
#: the solver name of the joint P-C-O rows
JOINT = "joint"
#: memory of a joint evaluation summed over ranks, per unknown: 13.0 GiB at 2,201,760 unknowns on
#: 2 ranks (OCIM2 mask, docs/benchmarks.md); rungs estimated beyond the machine are skipped
JOINT_BYTES_PER_UNKNOWN = 6.3e3


def _world(rung):
    from ..grid.embedded import embedded_grid
    from ..operators.world import _synthetic_world, default_shared_data_dir, load_world
    if rung == "ocim2":
        d = default_shared_data_dir()
        return load_world("ocim2-mask", d) if d else load_world("generated-2deg")
    if rung not in RUNGS:
        raise ValueError(f"unknown rung {rung} (known: {', '.join(RUNGS)})")
    return _synthetic_world(embedded_grid(**RUNGS[rung]), rung)


def measure_joint(rung: str, csv_path: str | None):
    """One joint P-C-O measurement on the current communicator (see the module); appends a CSV row."""
    from ..bench.common import PETSc
    from ..cycles.pco.model import joint_model
    from ..grid.distributed import DistributedGrid
    from ..inversion.objective import Objective
    from ..memory import current_rss_bytes, peak_rss_bytes
    from ..models.system import ModelSystem
    from .joint import PERTURBATION, component_stats, observations_of, reference_state
    from mpi4py import MPI
    comm = PETSc.COMM_WORLD
    mpi = comm.tompi4py()
    base = mpi.allreduce(current_rss_bytes(), op=MPI.MAX)
    mpi.Barrier()
    t0 = time.perf_counter()
    world = _world(rung)
    grid = world.grid
    row = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "rung": rung, "grid": grid.name, "wet_boxes": grid.nwet,
           "ranks": comm.getSize(), "solver": JOINT, "base_rss_bytes": base}
    model = joint_model(world, world.npp(), 2.1)
    row["unknowns"] = n = len(model.tracer_names) * grid.nwet
    if _skipped_for_memory(row, JOINT_BYTES_PER_UNKNOWN * n, csv_path, mpi):
        return row
    rprint(f"{rung}: {grid.nwet} boxes, {n} unknowns (joint P-C-O), {comm.getSize()} rank(s)")
    system = ModelSystem(model, DistributedGrid(grid, comm), world)
    row["world_peak_rss_bytes"] = row["assemble_peak_rss_bytes"] = mpi.allreduce(peak_rss_bytes(), op=MPI.MAX)
    mpi.Barrier()
    t_asm = mpi.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    t1 = time.perf_counter()
    ref, _ = reference_state(system, "scalref_")
    mpi.Barrier()
    t_cold = mpi.allreduce(time.perf_counter() - t1, op=MPI.MAX)
    obs = observations_of(system.to_natural(ref.u), model, world)
    x = model.parameters.get_x() - PERTURBATION
    obj = Objective(system, obs, prefix="scalj_")
    obj.set_warm_start(ref.u.copy())             # the common warm start
    ref.destroy()
    t2 = time.perf_counter()
    f, _, _ = obj.evaluate(x, 2)
    mpi.Barrier()
    t_eval = mpi.allreduce(time.perf_counter() - t2, op=MPI.MAX)
    row["iterations"] = obj.steady.newton_iterations
    # every component's factor is alive at once (sensitivities, adjoint): their MUMPS memory summed
    # (the largest process's figures summed bound the largest rank's share from above)
    stats = [c for c in (component_stats(obj.steady) or []) if c["mumps_mb_total"] is not None]
    if stats:
        row.update(mumps_mb_total=sum(c["mumps_mb_total"] for c in stats),
                   mumps_mb_max_rank=sum(c["mumps_mb_max_process"] for c in stats))
    obj.destroy()
    system.destroy()
    row.update(assemble_s=t_asm, cold_state_s=t_cold, factor_solve_s=t_eval, total_s=t_asm + t_cold + t_eval,
               objective=f, peak_rss_bytes=mpi.allreduce(peak_rss_bytes(), op=MPI.MAX), status="ok")
    rprint(f"  world {t_asm:.2f} s, cold state {t_cold:.2f} s, evaluation (objective, gradient, Hessian) {t_eval:.2f} s, "
           f"objective {f:.12e}, peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB"
           + (f", MUMPS factors {row['mumps_mb_total']} MB" if "mumps_mb_total" in row else ""))
    _append(csv_path, row, mpi)
    return row


def measure(rung: str, solver: str, csv_path: str | None, assemble_only: bool = False):
    """One measurement on the current communicator; appends a CSV row (rank 0).

    Peaks of the largest rank: ``world_peak_rss_bytes`` after the world and the rank's operator rows
    (the world-construction phase), ``assemble_peak_rss_bytes`` after the Jacobian's assembly,
    ``peak_rss_bytes`` at the end (the solve).  ``assemble_only`` stops before the solve."""
    from ..bench.common import PETSc
    from ..grid.distributed import DistributedGrid
    from ..cycles.phosphorus.model import p_model
    from ..memory import current_rss_bytes, peak_rss_bytes
    from ..models.system import ModelSystem
    from ..solvers.choice import choose, estimated_path_bytes
    from ..solvers.options import OptionsScope
    from ..solvers.steady import SteadyState
    from mpi4py import MPI
    comm = PETSc.COMM_WORLD
    mpi = comm.tompi4py()
    base = mpi.allreduce(current_rss_bytes(), op=MPI.MAX)      # the runtime: interpreter, PETSc, libraries
    world = _world(rung)
    grid = world.grid
    n = 4 * grid.nwet
    path = choose(n, solver)
    row = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "rung": rung, "grid": grid.name, "wet_boxes": grid.nwet,
           "unknowns": n, "ranks": comm.getSize(), "solver": path, "base_rss_bytes": base}
    if _skipped_for_memory(row, estimated_path_bytes(n, path), csv_path, mpi):
        return row
    rprint(f"{rung}: {grid.nwet} boxes, {n} unknowns, {comm.getSize()} rank(s), solver {path}")
    prefix = "scal_"
    scope = OptionsScope(prefix, overrides={"solver": path}).push()
    mpi.Barrier()
    t0 = time.perf_counter()
    dgrid = DistributedGrid(grid, comm)
    model = p_model(grid, world.npp("vgpm"), world.dip_gamma, 2.1, sigma2=0.2)
    sysm = ModelSystem(model, dgrid, world)
    row["world_peak_rss_bytes"] = mpi.allreduce(peak_rss_bytes(), op=MPI.MAX)
    u0 = dgrid.create_vec(4)
    u0.set(0.0)
    sysm.jacobian(u0)
    mpi.Barrier()
    t_asm = mpi.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    row["assemble_peak_rss_bytes"] = mpi.allreduce(peak_rss_bytes(), op=MPI.MAX)
    if assemble_only:
        sysm.destroy()
        u0.destroy()
        scope.pop()
        row.update(assemble_s=t_asm, peak_rss_bytes=row["assemble_peak_rss_bytes"], status="assembled")
        rprint(f"  assemble {t_asm:.2f} s; largest rank's peak: world {row['world_peak_rss_bytes'] / 2**30:.2f} GiB, "
               f"assembled {row['assemble_peak_rss_bytes'] / 2**30:.2f} GiB")
        _append(csv_path, row, mpi)
        return row
    t1 = time.perf_counter()
    with SteadyState(sysm, prefix=prefix) as ss:
        ss.solve()
        mpi.Barrier()
        t_fs = mpi.allreduce(time.perf_counter() - t1, op=MPI.MAX)
        # structured: the Schur complement's factor; iterative: the coarse operator's factor
        lu = ss.solver.schur if ss.structured else (ss.solver.coarse if path == "iterative" else ss.solver)
        if hasattr(ss.solver, "total_iterations"):
            row["iterations"] = ss.solver.total_iterations
        F = lu._mumps() if lu is not None and hasattr(lu, "_mumps") else None
        if F is not None:
            row.update(factor_entries=int(F.getMumpsInfog(29)), mumps_mb_max_rank=int(F.getMumpsInfog(21)),
                       mumps_mb_total=int(F.getMumpsInfog(22)))
            del F
    sysm.destroy()
    u0.destroy()
    row.update(assemble_s=t_asm, factor_solve_s=t_fs, total_s=t_asm + t_fs,
               peak_rss_bytes=mpi.allreduce(peak_rss_bytes(), op=MPI.MAX), status="ok")
    scope.pop()
    rprint(f"  assemble {t_asm:.2f} s, factor+solve {t_fs:.2f} s, peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB"
           + (f", factor entries {row['factor_entries']:.3e}, MUMPS {row['mumps_mb_total']} MB" if "factor_entries" in row
              else ""))
    _append(csv_path, row, mpi)
    return row


def _skipped_for_memory(row, need: float, csv_path, mpi) -> bool:
    """Record ``row`` as skipped (and say so) when ``need`` bytes exceed 90 % of the machine's available memory."""
    from ..solvers.choice import available_bytes
    if need <= 0.9 * available_bytes():
        return False
    row["status"] = f"skipped: estimated {need / 2**30:.0f} GiB > available {available_bytes() / 2**30:.0f} GiB"
    rprint(f"{row['rung']}/{row['solver']}/{row['ranks']} ranks: {row['status']}")
    _append(csv_path, row, mpi)
    return True


def _append(csv_path, row, mpi):
    if not csv_path or mpi.rank != 0:
        return
    new = not os.path.exists(csv_path)
    os.makedirs(os.path.dirname(os.path.abspath(csv_path)), exist_ok=True)
    fields = FIELDS
    if not new:
        with open(csv_path, newline="") as fh:
            fields = next(csv.reader(fh), FIELDS)      # keep an older file's columns
    with open(csv_path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in FIELDS})


def read_rows(csv_path):
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in ("wet_boxes", "unknowns", "ranks"):
            r[k] = int(r[k])
        for k in ("assemble_s", "factor_solve_s", "total_s", "factor_entries", "mumps_mb_max_rank", "mumps_mb_total",
                  "peak_rss_bytes", "iterations", "world_peak_rss_bytes", "assemble_peak_rss_bytes", "base_rss_bytes",
                  "cold_state_s", "objective"):
            r[k] = float(r[k]) if r.get(k) not in (None, "") else None
    return rows


def fit_power(x, y):
    """Least-squares ``y = a x^p`` in log space: returns (a, p)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or np.unique(x).size < 2:
        return None, None
    p, loga = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(loga)), float(p)


def _latest_by_ranks(rows, key: str) -> dict:
    """``{(rung, solver, status): {ranks: row}}``: the latest measured row (``ok`` or ``assembled``, with
    ``key``) of every rung, solver path, kind of run and rank count."""
    groups = {}
    for r in rows:
        if r["status"] in ("ok", "assembled") and r.get(key):
            groups.setdefault((r["rung"], r["solver"], r["status"]), {})[r["ranks"]] = r
    return groups


def memory_per_rank(rows):
    """Per rung and rank count, the largest rank's peaks (world construction, assembly, whole run) and
    their ratio to the 1-rank run of the same rung (the latest measurement of each)."""
    out = []
    for (rung, solver, status), by_k in sorted(_latest_by_ranks(rows, "assemble_peak_rss_bytes").items()):
        one = by_k.get(1)
        for ranks, r in sorted(by_k.items()):
            entry = {"rung": rung, "solver": solver, "ranks": ranks,
                     "phase": "assembly" if status == "assembled" else "run"}
            for k in ("world_peak_rss_bytes", "assemble_peak_rss_bytes", "peak_rss_bytes"):
                entry[k] = r.get(k)
                entry[k.replace("_bytes", "_vs_1_rank")] = (r[k] / one[k] if one and one.get(k) and r.get(k) else None)
                # the same without the runtime every process has before any world (interpreter, libraries)
                if one and r.get(k) and one.get(k) and r.get("base_rss_bytes") and one.get("base_rss_bytes"):
                    entry[k.replace("_bytes", "_above_runtime_vs_1_rank")] = (
                        (r[k] - r["base_rss_bytes"]) / (one[k] - one["base_rss_bytes"]))
            out.append(entry)
    return out


def shared_and_divided(peaks: dict):
    """Least-squares ``m_k = shared + divided / k`` from ``{ranks: peak bytes of the largest rank}``:
    the part every rank holds whatever the rank count, and the part split between the ranks."""
    ks = sorted(peaks)
    if len(ks) < 2:
        return None
    A = np.array([[1.0, 1.0 / k] for k in ks])
    (shared, divided), *_ = np.linalg.lstsq(A, np.array([peaks[k] for k in ks], float), rcond=None)
    return float(shared), float(divided)


def _parallel_if_possible(peaks: dict) -> dict:
    """The peaks on 2 or more ranks when there are two such rank counts, else all: going from 1 to 2
    ranks adds the parallel solvers' own structures once (MUMPS' and hypre's distributed data), so the
    1-rank peak would inflate the shared part that a cluster run of many ranks pays."""
    par = {k: v for k, v in peaks.items() if k >= 2}
    return par if len(par) >= 2 else peaks


def memory_split(rows):
    """Per rung and solver with at least two rank counts (the latest row of each): the shared and divided
    parts of the largest rank's peak (whole run, and world + assembly), fitted on the parallel rows
    where the ladder has two rank counts of 2 or more."""
    out = []
    for (rung, solver, status), by_k in sorted(_latest_by_ranks(rows, "peak_rss_bytes").items()):
        run = shared_and_divided(_parallel_if_possible({k: r["peak_rss_bytes"] for k, r in by_k.items()}))
        if run is None:
            continue
        asm = shared_and_divided(_parallel_if_possible({k: r["assemble_peak_rss_bytes"] for k, r in by_k.items()
                                                        if r.get("assemble_peak_rss_bytes")}))
        out.append({"rung": rung, "solver": solver, "phase": "assembly" if status == "assembled" else "run",
                    "unknowns": next(iter(by_k.values()))["unknowns"], "ranks": sorted(by_k),
                    "fitted_on_ranks": sorted(_parallel_if_possible(by_k)),
                    "shared_bytes": run[0], "divided_bytes": run[1],
                    "assembly_shared_bytes": asm[0] if asm else None, "assembly_divided_bytes": asm[1] if asm else None})
    return out


def summarize(rows):
    ok = [r for r in rows if r["status"] == "ok"]
    out = {"rows": len(rows), "efficiency": [], "growth": {}, "memory_per_rank": memory_per_rank(rows),
           "memory_split": memory_split(rows), "joint_objective_agreement": []}
    keys = sorted({(r["rung"], r["solver"]) for r in ok})
    for rung, solver in keys:
        rs = sorted((r for r in ok if r["rung"] == rung and r["solver"] == solver), key=lambda r: r["ranks"])
        base = next((r for r in rs if r["ranks"] == 1), None)
        for r in rs:
            eff = base["factor_solve_s"] / (r["ranks"] * r["factor_solve_s"]) if base else None
            out["efficiency"].append({"rung": rung, "solver": solver, "ranks": r["ranks"], "unknowns": r["unknowns"],
                                      "factor_solve_s": r["factor_solve_s"], "peak_rss_bytes": r["peak_rss_bytes"],
                                      "parallel_efficiency": eff})
    for rung in sorted({r["rung"] for r in ok if r["solver"] == JOINT}):
        by_k = {r["ranks"]: r["objective"] for r in ok if r["solver"] == JOINT and r["rung"] == rung and r.get("objective")}
        if len(by_k) >= 2:
            vals = np.array(list(by_k.values()))
            out["joint_objective_agreement"].append({"rung": rung, "ranks": sorted(by_k),
                                                     "max_rel_diff": float(np.ptp(vals) / np.abs(vals).max())})
    for solver in sorted({r["solver"] for r in ok}):
        one = [r for r in ok if r["solver"] == solver and r["ranks"] == 1]
        by_rung = {}
        for r in one:
            by_rung[r["unknowns"]] = r
        xs = sorted(by_rung)
        if len(xs) >= 2:
            a_t, p_t = fit_power(xs, [by_rung[x]["factor_solve_s"] for x in xs])
            a_m, p_m = fit_power(xs, [by_rung[x]["peak_rss_bytes"] for x in xs])
            out["growth"][solver] = {"time_coefficient_s": a_t, "time_exponent": p_t,
                                     "memory_coefficient_bytes": a_m, "memory_exponent": p_m, "points": len(xs)}
    return out


def _launcher():
    env = os.environ.get("BCP_LAUNCH")
    if env:
        return shlex.split(env)
    if os.environ.get("SLURM_JOB_ID") and shutil.which("srun"):
        return ["srun"]
    return ["mpirun", "--oversubscribe"]


def run(args):
    if args.single:
        if args.solver == JOINT:
            if args.assemble_only:
                from ..errors import ConfigError
                raise ConfigError("--assemble-only measures the P model's assembly; not with --solver joint")
            measure_joint(args.rungs.split(",")[0], args.csv)
        else:
            measure(args.rungs.split(",")[0], args.solver, args.csv, assemble_only=args.assemble_only)
        return 0
    from ..log import mpi_rank
    if mpi_rank() != 0:
        return 0
    csv_path = args.csv or "bench-scaling.csv"
    counts = []
    k = 1
    while k <= args.max_ranks:
        counts.append(k)
        k *= 2
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    failed = 0
    for rung in args.rungs.split(","):
        for solver in args.solver.split(","):
            if solver == JOINT and args.assemble_only:
                rprint(f"{rung}/{JOINT}: skipped (--assemble-only measures the P model's assembly)")
                continue
            for k in counts:
                cmd = _launcher() + ["-n", str(k), sys.executable, "-m", "bcp_hpc.cli.main", "bench", "scaling",
                                     "--single", "--rungs", rung, "--solver", solver, "--csv", csv_path]
                cmd += ["--assemble-only"] if args.assemble_only else []
                rprint("$ " + " ".join(cmd))
                r = subprocess.run(cmd, env=env)
                if r.returncode != 0:
                    failed += 1
                    rprint(f"  failed (exit {r.returncode}); continuing with the ladder")
    if not os.path.exists(csv_path):
        rprint(f"nothing measured, {csv_path} not written" + (f" ({failed} job step(s) failed)" if failed else ""))
        return 1 if failed else 0
    rows = read_rows(csv_path)
    summary = summarize(rows)
    for e in summary["efficiency"]:
        eff = e["parallel_efficiency"]
        rprint(f"{e['rung']:>9s} {e['solver']:>10s} {e['ranks']:3d} ranks {e['unknowns']:>9d} unknowns "
               f"{e['factor_solve_s']:8.2f} s  {e['peak_rss_bytes'] / 2**30:6.2f} GiB  "
               f"efficiency {'-' if eff is None else f'{eff:.2f}'}")
    for m in summary["memory_per_rank"]:
        def _r(key):
            return "-" if m.get(key) is None else format(m[key], ".2f")
        rprint(f"{m['rung']:>9s} {m['solver']:>10s} {m['ranks']:3d} ranks  largest rank: world "
               f"{m['world_peak_rss_bytes'] / 2**30:6.2f} GiB ({_r('world_peak_rss_vs_1_rank')} of 1 rank; "
               f"{_r('world_peak_rss_above_runtime_vs_1_rank')} above the runtime), "
               f"{m['phase']} {m['peak_rss_bytes'] / 2**30:6.2f} GiB ({_r('peak_rss_vs_1_rank')}; "
               f"{_r('peak_rss_above_runtime_vs_1_rank')})")
    for m in summary["memory_split"]:
        rprint(f"{m['rung']:>9s} {m['solver']:>10s} memory of the largest rank ({m['phase']}) = "
               f"{m['shared_bytes'] / 2**30:.2f} GiB + {m['divided_bytes'] / 2**30:.2f} GiB / ranks")
    for a in summary["joint_objective_agreement"]:
        rprint(f"{a['rung']:>9s} {JOINT:>10s} objective on {', '.join(map(str, a['ranks']))} ranks agrees to "
               f"{a['max_rel_diff']:.1e} (relative)")
    for solver, g in summary["growth"].items():
        rprint(f"growth ({solver}, 1 rank): time ~ N^{g['time_exponent']:.2f}, memory ~ N^{g['memory_exponent']:.2f}")
    payload = {"benchmark": "scaling", "csv": csv_path, **summary, "measurements": rows,
               "ranks": counts, "unknowns": sorted({r["unknowns"] for r in rows}),
               "seconds": {f"{e['rung']}/{e['solver']}/{e['ranks']}": e["factor_solve_s"] for e in summary["efficiency"]},
               "peak_rss_bytes": max([e["peak_rss_bytes"] for e in summary["efficiency"]]
                                     + [m["peak_rss_bytes"] for m in summary["memory_per_rank"]] or [0])}
    if args.plot or args.json:
        from ..reports.figures.scaling import scaling_ladder
        p = args.plot or os.path.splitext(args.json)[0] + ".png"
        out_dir, name = os.path.split(os.path.abspath(p))
        scaling_ladder(rows, out_dir, os.path.splitext(name)[0], formats=("png",))
        payload["plot"] = p
    if args.json:
        write_text_atomic(args.json, json.dumps(payload, indent=2) + "\n")
        rprint(f"wrote {args.json}")
    return 0
