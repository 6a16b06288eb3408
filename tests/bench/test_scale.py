"""Scale tooling: solver-path choice, scaling summary and growth fits, `plan`, solver paths agree."""
import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from bcp_hpc.bench.scaling import FIELDS, fit_power, read_rows, summarize
from bcp_hpc.errors import ConfigError
from bcp_hpc.solvers.choice import choose, estimated_factor_bytes


def test_choice_from_memory_estimate():
    n = 800_640
    need = estimated_factor_bytes(n)
    assert choose(n, "auto", available=10 * need) == "direct"
    assert choose(n, "auto", available=1.2 * need) == "structured"     # half of it fits in 60 %
    assert choose(n, "auto", available=0.3 * need) == "ooc"
    assert choose(n, "structured", available=0.0) == "structured"      # an explicit choice is kept
    with pytest.raises(ConfigError, match="unknown solver path"):
        choose(n, "magic")


def _write_rows(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})


def test_summary_efficiency_and_growth_exponents(tmp_path):
    # rows from an exact law t = 2e-7 N^1.5, M = 50 N^1.3, 2 ranks at efficiency 0.75
    rows = []
    for n in (1e5, 4e5, 1.6e6):
        t1 = 2e-7 * n ** 1.5
        for k, t in ((1, t1), (2, t1 / (2 * 0.75))):
            rows.append({"rung": f"r{int(n)}", "grid": "g", "wet_boxes": int(n // 4), "unknowns": int(n), "ranks": k,
                         "solver": "direct", "assemble_s": 0.1, "factor_solve_s": t, "total_s": t + 0.1,
                         "factor_entries": 1.0, "mumps_mb_max_rank": 1, "mumps_mb_total": 50 * n ** 1.3 / 2**20,
                         "peak_rss_bytes": 50 * n ** 1.3 / k, "status": "ok"})
    rows.append({"rung": "huge", "grid": "g", "wet_boxes": 1, "unknowns": 10**8, "ranks": 1, "solver": "direct",
                 "status": "skipped: estimated 9999 GiB > available 24 GiB"})
    p = tmp_path / "ladder.csv"
    _write_rows(p, rows)
    s = summarize(read_rows(p))
    effs = [e["parallel_efficiency"] for e in s["efficiency"] if e["ranks"] == 2]
    np.testing.assert_allclose(effs, 0.75, rtol=1e-12)
    g = s["growth"]["direct"]
    assert abs(g["time_exponent"] - 1.5) < 1e-9 and abs(g["memory_exponent"] - 1.3) < 1e-9
    a, q = fit_power([1, 2, 4], [3, 12, 48])
    assert abs(q - 2) < 1e-12 and abs(a - 3) < 1e-12
    # plan fits the same law and predicts from it
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--csv", str(p), "--json",
                        str(tmp_path / "plan.json"), "--mem-per-node", "128G", "--ranks-per-node", "32"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert abs(plan["time_fit"][1] - 1.5) < 1e-9 and abs(plan["memory_fit"][1] - 1.3) < 1e-9
    assert abs(plan["efficiency"] - 0.75) < 1e-12
    for row in plan["rows"]:
        n = row["unknowns"]
        d = row["direct"]
        assert abs(d["memory_bytes"] - 50 * n ** 1.3) < 1e-6 * d["memory_bytes"]
        k = d["ranks"]
        assert 1.3 * d["memory_bytes"] / k <= 0.8 * 4 * 2**30           # fits a rank's share
        assert k == 1 or 1.3 * d["memory_bytes"] / (k // 2) > 0.8 * 4 * 2**30
        assert abs(d["seconds"] - 2e-7 * n ** 1.5 / (k * 0.75 ** np.log2(k))) < 1e-9 * d["seconds"]


def test_plan_without_csv_and_bad_csv(tmp_path):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "0.5deg" in r.stdout and "1deg" in r.stdout
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--csv", str(tmp_path / "none.csv")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "scaling CSV not found" in r.stderr


@pytest.mark.slow
def test_iterative_path_equals_direct_on_embedded_world(embedded_world):
    """Two-level FGMRES (no fine-grid factors) reaches the direct steady state on the embedded world."""
    from bcp_hpc.grid.distributed import DistributedGrid
    from bcp_hpc.cycles.phosphorus.model import p_model
    from bcp_hpc.models.system import ModelSystem
    from bcp_hpc.petsc_env import import_petsc4py
    from bcp_hpc.solvers.steady import SteadyState
    PETSc = import_petsc4py()
    w = embedded_world
    out = {}
    for path in ("direct", "iterative"):
        PETSc.Options().setValue(f"emb{path}_solver", path)
        m = p_model(w.grid, w.npp("vgpm"), w.dip_gamma, 2.1, sigma2=0.2)
        s = ModelSystem(m, DistributedGrid(w.grid, PETSc.COMM_SELF), w.T)
        with SteadyState(s, prefix=f"emb{path}_") as ss:
            out[path] = s.to_natural(ss.solve())
            assert ss.path == path
            if path == "iterative":
                assert ss.solver.total_iterations / ss.solver.solves < 100
        s.destroy()
        PETSc.Options().delValue(f"emb{path}_solver")
    d = out["direct"]
    assert np.abs(out["iterative"] - d).max() <= 1e-9 * np.abs(d).max()


def test_bench_scaling_driver_end_to_end(tmp_path):
    """The driver launches one job step per rank count, appends CSV rows, writes the JSON summary."""
    import shutil
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not available")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    env.pop("BCP_LAUNCH", None)
    csv_path, js = tmp_path / "s.csv", tmp_path / "s.json"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "scaling", "--rungs", "tiny",
                        "--solver", "direct,iterative", "--max-ranks", "2", "--csv", str(csv_path), "--json", str(js)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = read_rows(csv_path)
    assert sorted((x["solver"], x["ranks"]) for x in rows) == [("direct", 1), ("direct", 2), ("iterative", 1),
                                                                ("iterative", 2)]
    assert all(x["status"] == "ok" and x["factor_solve_s"] > 0 and x["peak_rss_bytes"] > 0 for x in rows)
    s = json.loads(js.read_text())
    assert {e["ranks"] for e in s["efficiency"]} == {1, 2} and s["unknowns"] == [rows[0]["unknowns"]]
    assert (tmp_path / "s.png").stat().st_size > 0 and len(s["measurements"]) == 4
    # its folder gets a report with the scaling ladder drawn from the measurements
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "report", str(tmp_path)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    drawn = json.loads((tmp_path / "figures" / "scaling.json").read_text())["measurements"]
    assert [(m["solver"], m["ranks"], m["factor_solve_s"]) for m in drawn] == \
        [(x["solver"], x["ranks"], x["factor_solve_s"]) for x in rows]
    assert "bench scaling" in (tmp_path / "report.html").read_text()


def test_bench_invert_with_baseline_writes_its_figures(tmp_path):
    """`bench invert --baseline` runs the package and the first release's formulation in one
    process: both reach the same optimum, and the JSON holds the figures the brief asks for."""
    import json
    import subprocess
    import sys
    out = tmp_path / "inv.json"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "invert", "--world", "tiny", "--baseline",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(out.read_text())
    for key in ("ranks", "unknowns", "seconds", "peak_rss_bytes", "baseline_seconds", "speedup_vs_baseline",
                "iterations", "baseline_iterations"):
        assert key in d, key
    assert d["solver"] == "structured" and d["hessian"] == "adjoint"
    assert d["objective_rel_diff_vs_baseline"] < 1e-8
    assert abs(d["speedup_vs_baseline"] - d["baseline_seconds"] / d["seconds"]["inversion"]) < 1e-12


@pytest.mark.slow
def test_bench_pmodel_writes_its_figures(tmp_path):
    """`bench pmodel` (embedded world here): package and monolithic baseline agree to 1e-8, and the
    JSON holds every figure the P-model issue names; the speedup is baseline over package time."""
    import json
    import subprocess
    import sys
    out = tmp_path / "pm.json"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "pmodel", "--embedded", "--no-scipy",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(out.read_text())
    for key in ("ranks", "unknowns", "seconds", "peak_rss_bytes", "baseline_seconds", "baseline_peak_rss_bytes",
                "speedup_vs_baseline", "max_rel_diff_vs_baseline", "gmres_iterations", "kept_boxes_in_schur"):
        assert key in d, key
    assert d["package_path"] == "structured" and d["max_rel_diff_vs_baseline"] < 1e-8
    package = sum(v for k, v in d["seconds"].items() if k != "world")
    assert abs(d["speedup_vs_baseline"] - d["baseline_seconds"] / package) < 1e-9
    assert "outer GMRES iterations per block solve" in r.stdout


def test_bench_joint_with_baseline_writes_its_figures(tmp_path):
    """`bench joint --baseline`: block-triangular and monolithic LU give the same gradient and Hessian
    of the joint objective; the JSON holds the figures the brief asks for."""
    import json
    import subprocess
    import sys
    out = tmp_path / "joint.json"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "joint", "--world", "tiny", "--baseline",
                        "--compare-newton", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(out.read_text())
    for key in ("ranks", "unknowns", "seconds", "peak_rss_bytes", "baseline_seconds", "speedup_vs_baseline",
                "peak_rss_bytes_all_ranks_per_phase", "evaluation_seconds_by_step"):
        assert key in d, key
    assert d["unknowns"] == 11 * 1179 and d["solver"].startswith("block-triangular")
    assert d["solver_path"] != "ooc"                  # in core unless -benchj_solver ooc
    assert d["max_rel_diff_gradient"] < 1e-8 and d["max_rel_diff_hessian"] < 1e-8
    # Newton by components against Newton on the whole system, in the same run
    g = d["global_newton"]
    assert g["max_rel_diff_cold_state"] < 1e-8 and g["max_rel_diff_gradient"] < 1e-8 and g["max_rel_diff_hessian"] < 1e-8
    assert d["newton_by_components_speedup"]["cold"] == g["cold_seconds"] / d["seconds"]["reference state (cold Newton)"]
    # per component: iterations and factorizations; the linear ones are factored once
    facts = {", ".join(c["tracers"]): c for c in d["component_factorizations"]}
    assert set(facts) == set(d["component_iterations"])
    assert facts["DIP, POP, DOPs"]["factorizations"] == 1 and facts["DIP, POP, DOPs"]["mumps_mb_total"] >= 1
    assert facts["O2"]["factorizations"] >= 2 and all(c["factor_seconds"] > 0 for c in facts.values())
    assert abs(d["speedup_vs_baseline"] - d["baseline_seconds"] / d["seconds"]["package: objective + gradient + Hessian"]) < 1e-12


def test_memory_split_into_shared_and_divided_parts_and_plan_uses_it(tmp_path):
    """Peaks from an exact law m_k = s0 + s1 N + d N / k on 1, 2, 4 ranks: the ladder's split recovers
    both parts per rung, plan fits s0, s1, d and sizes the ranks from them (a grid whose shared part
    alone exceeds a rank's share fits at no rank count)."""
    from bcp_hpc.bench.scaling import memory_split
    from bcp_hpc.cli.plan import memory_fit
    s0, s1, d = 0.2 * 2**30, 150.0, 1800.0
    rows = []
    for n in (2e5, 8e5, 3.2e6):
        for k in (1, 2, 4):
            peak = s0 + s1 * n + d * n / k
            rows.append({"rung": f"r{int(n)}", "grid": "g", "wet_boxes": int(n // 4), "unknowns": int(n), "ranks": k,
                         "solver": "iterative", "assemble_s": 0.1, "factor_solve_s": 1e-6 * n ** 1.2 / k,
                         "total_s": 1.0, "peak_rss_bytes": peak, "status": "ok",
                         "world_peak_rss_bytes": s0 + s1 * n + 0.1 * n / k,
                         "assemble_peak_rss_bytes": s0 + s1 * n + 300.0 * n / k})
    p = tmp_path / "ladder.csv"
    _write_rows(p, rows)
    split = memory_split(read_rows(p))
    assert len(split) == 3
    for m in split:
        n = m["unknowns"]
        assert abs(m["shared_bytes"] - (s0 + s1 * n)) < 1e-6 * m["shared_bytes"]
        assert abs(m["divided_bytes"] - d * n) < 1e-6 * m["divided_bytes"]
        assert abs(m["assembly_divided_bytes"] - 300.0 * n) < 1e-6 * 300.0 * n
    (f0, f1), fd = memory_fit(split)
    assert abs(f0 - s0) < 1e-6 * s0 and abs(f1 - s1) < 1e-6 * s1 and abs(fd - d) < 1e-9 * d
    s = summarize(read_rows(p))
    four = [m for m in s["memory_per_rank"] if m["ranks"] == 4]
    for m in four:
        n = int(m["rung"][1:])
        assert abs(m["peak_rss_vs_1_rank"] - (s0 + s1 * n + d * n / 4) / (s0 + s1 * n + d * n)) < 1e-9
    # plan: 8 GiB per rank
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--csv", str(p), "--json",
                        str(tmp_path / "plan.json"), "--mem-per-node", "64G", "--ranks-per-node", "8"],
                       capture_output=True, text=True, env=env)
    # no direct rows: the factor paths keep the package defaults (as without a CSV), the iterative
    # path is fitted, and plan says which is which
    assert r.returncode == 0, r.stderr
    assert "direct path: package defaults" in r.stdout and "iterative path fitted to 9 iterative rows" in r.stdout
    only_it = json.loads((tmp_path / "plan.json").read_text())
    (g0, g1), gd = only_it["shared_fit"], only_it["iterative_divided_per_unknown"]
    assert abs(g0 - s0) < 1e-6 * s0 and abs(g1 - s1) < 1e-6 * s1 and abs(gd - d) < 1e-9 * d
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--json", str(tmp_path / "defaults.json"),
                        "--mem-per-node", "64G", "--ranks-per-node", "8"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    defaults = json.loads((tmp_path / "defaults.json").read_text())
    # the factor memory and the time law are the defaults' (the shared part, and so the rank count, is fitted)
    for mine, ref in zip(only_it["rows"], defaults["rows"]):
        assert mine["direct"]["memory_bytes"] == ref["direct"]["memory_bytes"]
        if mine["direct"]["ranks"] == ref["direct"]["ranks"]:
            assert mine["direct"]["seconds"] == ref["direct"]["seconds"]
    for n in (2e5, 8e5, 3.2e6):
        for k in (1, 2):
            rows.append({"rung": f"r{int(n)}", "grid": "g", "wet_boxes": int(n // 4), "unknowns": int(n), "ranks": k,
                         "solver": "direct", "assemble_s": 0.1, "factor_solve_s": 1e-7 * n ** 1.5 / k, "total_s": 1.0,
                         "mumps_mb_total": 40 * n ** 1.3 / 2**20, "peak_rss_bytes": 40 * n ** 1.3 / k, "status": "ok"})
    _write_rows(p, rows)
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--csv", str(p), "--json",
                        str(tmp_path / "plan.json"), "--mem-per-node", "64G", "--ranks-per-node", "8"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    # the direct rows (2 ranks at half the peak) add a zero shared part at other sizes: refit from all rows
    (g0, g1), gd = plan["shared_fit"], plan["iterative_divided_per_unknown"]
    assert abs(gd - d) < 1e-9 * d
    share = 8 * 2**30
    for row in plan["rows"]:
        n = row["unknowns"]
        it = row["iterative"]
        shared = g0 + g1 * n
        if shared >= 0.8 * share:
            assert it["ranks"] is None and it["seconds"] is None
            continue
        k = it["ranks"]
        assert shared + d * n / k <= 0.8 * share
        assert k == 1 or shared + d * n / (k // 2) > 0.8 * share


def test_memory_per_rank_falls_with_ranks_when_building_the_world(tmp_path):
    """World construction and operator assembly on a generated 2 deg x 48-layer world (350,311 boxes)
    on 1 and 4 ranks: the largest rank's peak falls (the figures are in docs/benchmarks.md; this only
    guards the trend, with a generous margin)."""
    import shutil
    if shutil.which("mpirun") is None:
        pytest.skip("no mpirun on PATH")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    csv_path, js = tmp_path / "asm.csv", tmp_path / "asm.json"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "scaling", "--rungs", "2deg48", "--solver",
                        "iterative", "--max-ranks", "4", "--assemble-only", "--csv", str(csv_path), "--json", str(js)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    mem = {m["ranks"]: m for m in json.loads(js.read_text())["memory_per_rank"]}
    assert sorted(mem) == [1, 2, 4]
    # the assembled system (T rows, Jacobian) divides; the world phase has a shared part (grid, forcing)
    assert mem[4]["assemble_peak_rss_vs_1_rank"] < 0.7, mem
    assert mem[2]["assemble_peak_rss_vs_1_rank"] < 0.85, mem
    assert mem[4]["world_peak_rss_vs_1_rank"] < 0.9, mem


def test_plan_predicts_joint_evaluations_from_bench_joint_runs(tmp_path):
    """Joint rows of plan: two `bench joint` runs on an exact law (time a N^p, summed memory b N^q, 2
    ranks) give back p and q and the law's values at another size; one run uses the direct path's
    exponents; a file that is not a bench joint JSON is refused naming it (exit 2)."""
    import json
    from bcp_hpc.cli.plan import JOINT_PHASE, joint_fit, predict_joint, read_joint
    a, p, b, q = 2e-8, 1.5, 3e3, 1.2
    files = []
    for n in (4e5, 2.2e6):
        f = tmp_path / f"bj{int(n)}.json"
        f.write_text(json.dumps({"benchmark": "joint", "source": "law", "unknowns": int(n), "ranks": 2,
                                 "seconds": {JOINT_PHASE: a * n ** p},
                                 "peak_rss_bytes_per_phase": {JOINT_PHASE: 0.6 * b * n ** q},
                                 "peak_rss_bytes_all_ranks_per_phase": {JOINT_PHASE: b * n ** q}}))
        files.append(str(f))
    fit = joint_fit(read_joint(files), 9.0, 9.0)
    assert fit["fitted"] and abs(fit["time_exponent"] - p) < 1e-9 and abs(fit["memory_exponent"] - q) < 1e-9
    n = 8.8e6
    pred = predict_joint(n, fit, 0.6, 1e15)          # memory per rank never binding: 1 rank
    assert pred["ranks"] == 1
    assert abs(pred["seconds_at_anchor_ranks"] - a * n ** p) < 1e-9 * a * n ** p
    assert abs(pred["memory_per_rank_at_anchor_ranks_bytes"] - 0.6 * b * n ** q) < 1e-9 * b * n ** q
    assert abs(pred["seconds"] - a * n ** p * 2 * 0.6) < 1e-9 * a * n ** p     # 1 rank: 2 ranks' time x 2 x 0.6
    one = joint_fit(read_joint(files[:1]), 1.58, 1.45)
    assert not one["fitted"] and one["time_exponent"] == 1.58 and one["memory_exponent"] == 1.45
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--joint", files[0], "--joint", files[1]],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "joint P-C-O evaluation" in r.stdout and "time ~ N^1.50" in r.stdout, r.stdout
    bad = tmp_path / "scaling.json"
    bad.write_text(json.dumps({"benchmark": "scaling"}))
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--joint", str(bad)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 2 and "scaling.json" in r.stderr and "bench joint" in r.stderr and "Traceback" not in r.stderr


def test_plan_checks_the_joint_law_out_of_sample(tmp_path):
    """Three sizes on one rank count: the law is fitted to the two smaller ones and predicts the largest.
    The smaller runs follow time a N^p and memory b N^q exactly; the largest took 1.25x the law's time at
    the law's memory, so the check reports a time error of 1/1.25 - 1 = -20 % and a memory error of 0;
    with two sizes there is no check."""
    import json
    from bcp_hpc.cli.plan import JOINT_PHASE, joint_holdout, read_joint
    a, p, b, q = 2e-8, 1.5, 3e3, 1.2
    files = []
    for n, slow in ((4e5, 1.0), (1.2e6, 1.0), (2.2e6, 1.25)):
        f = tmp_path / f"bj{int(n)}.json"
        f.write_text(json.dumps({"benchmark": "joint", "source": f"law{int(n)}", "unknowns": int(n), "ranks": 2,
                                 "seconds": {JOINT_PHASE: slow * a * n ** p},
                                 "peak_rss_bytes_per_phase": {JOINT_PHASE: 0.6 * b * n ** q},
                                 "peak_rss_bytes_all_ranks_per_phase": {JOINT_PHASE: b * n ** q}}))
        files.append(str(f))
    check = joint_holdout(read_joint(files), 0.6, 1e15)
    assert check["source"] == "law2200000" and check["fitted_to"] == 2 and check["ranks"] == 2
    assert abs(check["time_error"] - (1 / 1.25 - 1)) < 1e-9 and abs(check["memory_error"]) < 1e-9
    assert joint_holdout(read_joint(files[:2]), 0.6, 1e15) is None
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", *sum((["--joint", f] for f in files), [])],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "check out of sample" in r.stdout and "errors -20 %, +0 %" in r.stdout, r.stdout


def test_bench_scaling_joint_rows_agree_across_ranks(tmp_path):
    """`--solver joint`: the joint model's cold state and evaluation on 1 and 2 ranks (one job step
    each), with the same objective on both rank counts, beside the P model's rows of the same ladder."""
    import shutil
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not available")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("BCP_LAUNCH", None)
    csv_path, js = tmp_path / "j.csv", tmp_path / "j.json"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "scaling", "--rungs", "tiny",
                        "--solver", "joint,direct", "--max-ranks", "2", "--csv", str(csv_path), "--json", str(js)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = read_rows(csv_path)
    joint = {x["ranks"]: x for x in rows if x["solver"] == "joint"}
    assert sorted(joint) == [1, 2] and all(x["status"] == "ok" for x in rows)
    # 11 tracers on the tiny grid's boxes; the P rows have 4
    direct = next(x for x in rows if x["solver"] == "direct")
    assert joint[1]["unknowns"] == 11 * direct["wet_boxes"] and direct["unknowns"] == 4 * direct["wet_boxes"]
    for x in joint.values():
        assert x["cold_state_s"] > 0 and x["factor_solve_s"] > 0 and x["peak_rss_bytes"] > 0 and x["iterations"] >= 1
        assert x["total_s"] >= x["cold_state_s"] + x["factor_solve_s"]
    assert abs(joint[2]["objective"] - joint[1]["objective"]) <= 1e-8 * abs(joint[1]["objective"])
    # the nine components' MUMPS factors: on one rank its process holds them all
    assert joint[1]["mumps_mb_total"] > 0 and joint[1]["mumps_mb_max_rank"] == joint[1]["mumps_mb_total"]
    assert 0 < joint[2]["mumps_mb_max_rank"] < joint[2]["mumps_mb_total"]
    s = json.loads(js.read_text())
    (agree,) = s["joint_objective_agreement"]
    assert agree["rung"] == "tiny" and agree["ranks"] == [1, 2] and agree["max_rel_diff"] <= 1e-8
    assert {(e["solver"], e["ranks"]) for e in s["efficiency"]} == {("joint", 1), ("joint", 2), ("direct", 1),
                                                                    ("direct", 2)}
    assert "objective on 1, 2 ranks agrees" in r.stdout
    # --assemble-only measures the P model's assembly: the joint rung is skipped, saying so
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "scaling", "--rungs", "tiny", "--solver",
                        "joint", "--max-ranks", "1", "--assemble-only", "--csv", str(tmp_path / "a.csv")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "tiny/joint: skipped (--assemble-only" in r.stdout, r.stdout + r.stderr
    assert "nothing measured" in r.stdout and "Traceback" not in r.stderr


def test_plan_takes_the_joint_efficiency_and_anchors_from_the_ladder(tmp_path):
    """Joint rows of a ladder CSV (no `--joint` file): time a N^p at 1 rank, 2 ranks at efficiency 0.7,
    summed memory b N^q; plan anchors on them, fits p and q on one rank count and moves the time to
    other rank counts with the ladder's efficiency 0.7 (not the direct path's); the P model's paths
    keep the package defaults, as the ladder has no P rows."""
    from bcp_hpc.cli.plan import ladder_joint
    a, p, b, q, e = 3e-8, 1.4, 5e3, 1.1, 0.7
    rows = []
    for n in (4e5, 2.2e6):
        for k in (1, 2):
            rows.append({"rung": f"r{int(n)}", "grid": "g", "wet_boxes": int(n // 11), "unknowns": int(n), "ranks": k,
                         "solver": "joint", "assemble_s": 0.1, "cold_state_s": 1.0,
                         "factor_solve_s": a * n ** p / (k * (e if k == 2 else 1.0)),
                         "total_s": 2.0, "peak_rss_bytes": b * n ** q / k, "status": "ok", "objective": 1.0})
    path = tmp_path / "ladder.csv"
    _write_rows(path, rows)
    anchors, eff, split = ladder_joint(str(path))
    assert len(anchors) == 4 and abs(eff - e) < 1e-12
    assert split["rung"] == "r2200000" and abs(split["shared_bytes"]) < 1e-6 * b * 2.2e6 ** q
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", "--csv", str(path), "--json",
                        str(tmp_path / "plan.json"), "--mem-per-node", "1T", "--ranks-per-node", "1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "joint rows only" in r.stdout and "efficiency per doubling 0.70 (the ladder's joint rows')" in r.stdout
    plan = json.loads((tmp_path / "plan.json").read_text())
    joint = plan["joint"]
    assert abs(joint["time_exponent"] - p) < 1e-9 and abs(joint["memory_exponent"] - q) < 1e-9
    assert abs(joint["efficiency"] - e) < 1e-12
    for row in joint["rows"]:
        n, k = row["unknowns"], row["ranks"]
        anchor_t = a * n ** p / (2 * e)         # the anchor is the 2-rank row of the largest size
        assert abs(row["seconds_at_anchor_ranks"] - anchor_t) < 1e-9 * anchor_t
        expected = anchor_t * 2 * e / (k * e ** math.log2(k))
        assert abs(row["seconds"] - expected) < 1e-9 * expected
        # nothing shared in these rows: the summed memory b N^q divides by the ranks
        assert abs(row["memory_per_rank_bytes"] - b * n ** q / k) < 1e-6 * b * n ** q / k


def test_plan_holds_the_joint_models_shared_memory_on_every_rank(tmp_path):
    """Joint ladder rows on 1, 2 and 4 ranks with a part every rank holds: m_k = (S + D / k) (N / N_b)^q.
    The split fitted on 2 and 4 ranks recovers S and D at the largest size; plan's memory per rank is
    (S + D / k) (N / N_b)^q at every grid, and a grid whose shared part alone exceeds 80 % of a rank's
    memory fits at no rank count."""
    from bcp_hpc.cli.plan import ladder_joint, predict_joint, joint_fit
    S, D, q, nb = 2.0 * 2**30, 9.0 * 2**30, 1.05, 2.2e6
    rows = []
    for n in (4e5, nb):
        for k in (1, 2, 4):
            rows.append({"rung": f"r{int(n)}", "grid": "g", "wet_boxes": int(n // 11), "unknowns": int(n), "ranks": k,
                         "solver": "joint", "assemble_s": 0.1, "cold_state_s": 1.0, "factor_solve_s": 1e-6 * n / k,
                         "total_s": 2.0, "peak_rss_bytes": (S + D / k) * (n / nb) ** q, "status": "ok",
                         "objective": 1.0})
    path = tmp_path / "ladder.csv"
    _write_rows(path, rows)
    anchors, eff, split = ladder_joint(str(path))
    assert split["fitted_on_ranks"] == [2, 4] and split["unknowns"] == int(nb)
    assert abs(split["shared_bytes"] - S) < 1e-6 * S and abs(split["divided_bytes"] - D) < 1e-6 * D
    fit = joint_fit(anchors, 1.0, 1.0)
    fit["memory_exponent"] = q
    for n, fits in ((8.8e6, True), (70e6, False)):
        p = predict_joint(n, fit, eff, 12 * 2**30, split)
        grow = (n / nb) ** q
        if not fits:
            assert S * grow > 0.8 * 12 * 2**30 and p["ranks"] is None and p["seconds"] is None
            continue
        k = p["ranks"]
        assert abs(p["memory_per_rank_bytes"] - (S + D / k) * grow) < 1e-6 * p["memory_per_rank_bytes"]
        assert (S + D / k) * grow <= 0.8 * 12 * 2**30 < (S + 2 * D / k) * grow


def test_plan_predicts_out_of_core_joint_runs_from_their_own_kind(tmp_path):
    """`bench joint` runs with the blocks out of core are predicted from such runs and say so; files of
    both kinds together are refused before anything is printed, naming an out-of-core file (exit 2)."""
    from bcp_hpc.cli.plan import JOINT_PHASE
    files = {}
    for kind, path in (("ooc", "ooc"), ("direct", "incore")):
        for n in (4e5, 2.2e6):
            f = tmp_path / f"{path}{int(n)}.json"
            f.write_text(json.dumps({"benchmark": "joint", "source": "law", "unknowns": int(n), "ranks": 2,
                                     "solver_path": kind, "seconds": {JOINT_PHASE: 1e-6 * n},
                                     "peak_rss_bytes_per_phase": {JOINT_PHASE: 1e3 * n},
                                     "peak_rss_bytes_all_ranks_per_phase": {JOINT_PHASE: 2e3 * n}}))
            files.setdefault(path, []).append(str(f))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    def plan(*paths):
        return subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "plan", *sum((["--joint", p] for p in paths), [])],
                              capture_output=True, text=True, env=env)
    r = plan(*files["ooc"])
    assert r.returncode == 0 and "joint P-C-O evaluation (out of core," in r.stdout, r.stdout + r.stderr
    r = plan(*files["incore"])
    assert r.returncode == 0 and "out of core" not in r.stdout.split("joint P-C-O")[1]
    r = plan(files["incore"][0], files["ooc"][1])
    assert r.returncode == 2 and "mix in-core and out-of-core" in r.stderr and "ooc2200000.json" in r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr


def test_joint_blocks_out_of_core_give_the_in_core_evaluation(tmp_path):
    """`-<prefix>solver ooc` on the joint model factors every block out of core (MUMPS' in-memory
    factors shrink) and gives the in-core objective; the log says which path it takes."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               MUMPS_OOC_TMPDIR=str(tmp_path))
    runs = {}
    for kind, extra in (("incore", []), ("ooc", ["-benchref_solver", "ooc", "-benchj_solver", "ooc"])):
        out = tmp_path / f"{kind}.json"
        r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "bench", "joint", "--world", "tiny", "--json",
                            str(out), *extra], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        runs[kind] = (json.loads(out.read_text()), r.stderr)
    (inc, _), (ooc, log) = runs["incore"], runs["ooc"]
    assert inc["solver_path"] != "ooc" and ooc["solver_path"] == "ooc"
    assert "block-triangular path, its blocks factored out of core" in log
    assert abs(ooc["objective"] - inc["objective"]) <= 1e-9 * abs(inc["objective"])
    mb = {k: sum(c["mumps_mb_total"] for c in d["component_factorizations"]) for k, (d, _) in runs.items()}
    assert mb["ooc"] < mb["incore"], mb
