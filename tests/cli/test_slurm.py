"""`bcp-hpc slurm render`: every kind renders, passes `bash -n`, and a rendered script runs locally."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from bcp_hpc.cli.slurm import KINDS

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           OPENBLAS_NUM_THREADS="1")
CONFIG = """
[world]
source = "tiny"
[experiment]
sigma2_values = [0.0, 0.1]
sensitivity_runs = false
[slurm]
nodes = 2
ranks_per_node = 4
mem = "48G"
time = "01:30:00"
modules = ["petsc/3.18", "openmpi"]
partition = "normal"
"""


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd)


@pytest.mark.parametrize("kind", KINDS)
def test_render_every_kind(kind, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / f"{kind}.slurm"
    r = cli("slurm", "render", kind, "--config", str(cfg), "--out", str(out), "--time", "02:00:00")
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert subprocess.run(["bash", "-n", str(out)]).returncode == 0
    assert "#SBATCH --nodes=2" in text and "#SBATCH --ntasks-per-node=4" in text and "#SBATCH --mem=48G" in text
    assert "#SBATCH --time=02:00:00" in text            # the flag overrides the config
    assert "load_module petsc/3.18" in text and "load_module openmpi" in text
    assert "#SBATCH --partition=normal" in text
    if kind in ("forward", "invert", "sigma2-sweep"):
        assert "#SBATCH --requeue" in text and "--resume" in text and "scontrol requeue" in text
    if kind == "sigma2-sweep":
        assert "#SBATCH --array=0-1" in text and "VALUES=(0.0 0.1)" in text
    if kind == "bench-scaling":
        assert "--max-ranks 8" in text and "--solver direct,structured,ooc,joint" in text


def test_unknown_kind_is_a_clear_error(tmp_path):
    r = cli("slurm", "render", "joint-everything")
    assert r.returncode == 2 and "unknown job kind" in r.stderr


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not available")
def test_rendered_script_runs_locally_with_mpirun(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG)
    venv = os.path.dirname(os.path.dirname(sys.executable))
    script = tmp_path / "forward.slurm"
    r = cli("slurm", "render", "forward", "--config", str(cfg), "--venv", venv, "--run-out", "out-fw",
            "--out", str(script))
    assert r.returncode == 0, r.stderr
    env = dict(ENV, LAUNCH="mpirun -n 2 --oversubscribe")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    summary = json.loads((tmp_path / "out-fw" / "summary.json").read_text())
    assert [run["sigma2"] for run in summary["runs"]] == [0.0, 0.1]
    assert (tmp_path / "out-fw" / "log_view.txt").stat().st_size > 0
    # a requeued job resumes: the second run finds both sigma2 runs done and recomputes nothing
    r2 = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert (r2.stdout + r2.stderr).count("already done (resume)") == 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not available")
def test_rendered_joint_inversion_runs_locally_and_resumes(tmp_path):
    """The joint-invert kind on the tiny world with `mpirun -n 2` in place of srun: the 21-parameter
    twin inversion converges, recovers the constrained parameters within the posterior, writes its
    results; the requeued job resumes from the checkpoint at the optimum."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG)
    venv = os.path.dirname(os.path.dirname(sys.executable))
    script = tmp_path / "joint.slurm"
    r = cli("slurm", "render", "joint-invert", "--config", str(cfg), "--venv", venv, "--run-out", "out-joint",
            "--out", str(script))
    assert r.returncode == 0, r.stderr
    assert "bcp-hpc invert --cycle PCO" in script.read_text()
    env = dict(ENV, LAUNCH="mpirun -n 2 --oversubscribe")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = tmp_path / "out-joint"
    res = json.loads((out / "joint_result.json").read_text())
    assert res["model"] == "PCO" and res["variant"]["labile"] is True and len(res["parameters"]) == 21
    assert res["iterations"] <= 40
    fit = res["diagnostics"]["fit"]
    assert all(fit[t]["r2"] > 0.99 for t in ("DIP", "DIC", "ALK", "O2"))
    constrained = [n for n, v in res["parameters"].items() if not v["poorly_constrained"] and not v["at_bound"]]
    assert len(constrained) >= 15
    assert all(abs(res["z_from_truth"][n]) < 4.0 for n in constrained), res["z_from_truth"]
    d = res["diagnostics"]
    assert d["docs_export_adjoint_pg_c_per_yr"] == pytest.approx(d["docs_export_pg_c_per_yr"], rel=1e-8)
    assert (out / "joint_state.h5").exists() and (out / "log_view.txt").stat().st_size > 0
    r2 = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr[-2000:]
    again = json.loads((out / "joint_result.json").read_text())
    assert again["objective"] == pytest.approx(res["objective"], rel=1e-8)
    assert again["iterations"] == res["iterations"]      # resumed at the optimum: no new accepted iterate
    assert "resuming from" in r2.stdout + r2.stderr


def _run_array_locally(tmp_path, kind, config, run_out, waiting, merged):
    """Render job array ``kind`` from ``config`` and run its two tasks here, one after the other: the first
    task's gather reports ``waiting`` and writes no ``merged`` file yet.  Returns (output folder, script)."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(config)
    venv = os.path.dirname(os.path.dirname(sys.executable))
    script = tmp_path / f"{kind}.slurm"
    r = cli("slurm", "render", kind, "--config", str(cfg), "--venv", venv, "--run-out", run_out, "--out", str(script))
    assert r.returncode == 0, r.stderr
    out = tmp_path / run_out
    for task in ("0", "1"):
        env = dict(ENV, LAUNCH="env", SLURM_ARRAY_TASK_ID=task)
        r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        if task == "0":
            assert waiting in r.stdout + r.stderr
            assert not (out / merged).exists()
    return out, script


def test_sigma2_array_tasks_end_with_the_merged_tables(tmp_path):
    """The sigma2-sweep job array run locally, one task after the other: the first task's gather says what is
    still missing, the last one writes the merged Table S1/S2, summary and NPP(sigma2) fit of every run."""
    out, script = _run_array_locally(tmp_path, "sigma2-sweep", CONFIG, "out-sw",
                                     "sigma2 runs [0.1] not finished yet", "summary.json")
    assert "--gather --out" in script.read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert [run["sigma2"] for run in summary["runs"]] == [0.0, 0.1]
    assert {"a", "b", "r2"} <= set(summary["fit"])
    for f in ("table_S1_parameters.csv", "table_S2_allocation.csv", "sigma2_sweep.h5"):
        assert (out / f).exists()
    header = (out / "table_S1_parameters.csv").read_text().splitlines()[0]
    assert "tao_reason" in header and "alpha_flag" in header
    # the merged folder's report finds each task's runs in its folder
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    drawn = json.loads((out / "figures" / "obs_vs_model.json").read_text())["panels"]
    assert len(drawn) == 2 and all(p["r2"] is not None for p in drawn)


def test_array_tasks_share_the_array_folder_and_requeue_themselves(tmp_path):
    """Under SLURM every task of an array has its own job id: the output folder is the array's, the requeue
    the task's own."""
    script = tmp_path / "sweep.slurm"
    assert cli("slurm", "render", "sigma2-sweep", "--world", "tiny", "--out", str(script)).returncode == 0
    text = script.read_text()
    assert 'JOB="${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-local}}"' in text and 'scontrol requeue "$TASK_JOB"' in text
    probe = text.split("mkdir -p")[0].replace("source ", ": ") + 'echo "$JOB $TASK_JOB"\n'
    r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True,
                       env=dict(ENV, SLURM_ARRAY_JOB_ID="700", SLURM_JOB_ID="702", SLURM_ARRAY_TASK_ID="2"))
    assert r.stdout.strip().splitlines()[-1] == "700 702", r.stdout + r.stderr


@pytest.mark.slow
def test_joint_products_array_gathers_what_one_job_computes(tmp_path):
    """joint-products as a job array (one product per task, run locally one after the other): the last task's
    gather writes the products table, mean +- std and cross experiment of a single `experiment joint-products`
    run, and the gathered folder's report draws every product."""
    out, _ = _run_array_locally(tmp_path, "joint-products", CONFIG + '[joint]\nnpp_products = ["vgpm", "cbpm"]\n',
                                "out-jp", "products ['cbpm'] not finished yet", "joint_products.json")
    cfg = tmp_path / "run.toml"
    merged = json.loads((out / "joint_products.json").read_text())
    one = cli("experiment", "joint-products", "--config", str(cfg), "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    ref = json.loads((tmp_path / "one" / "joint_products.json").read_text())
    assert merged["products"] == ref["products"] == ["vgpm", "cbpm"]
    for prod in ref["products"]:
        assert merged["runs"][prod]["objective"] == pytest.approx(ref["runs"][prod]["objective"], rel=1e-10)
    for k, st in ref["mean_std"].items():
        assert merged["mean_std"][k]["mean"] == pytest.approx(st["mean"], rel=1e-9)
        assert merged["mean_std"][k]["std"] == pytest.approx(st["std"], rel=1e-6, abs=1e-12)
    assert merged["cross_experiment"]["docl_export_pg_c_per_yr"] == pytest.approx(
        ref["cross_experiment"]["docl_export_pg_c_per_yr"], rel=1e-8)
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    drawn = json.loads((out / "figures" / "export_maps.json").read_text())["panels"]
    assert [p["title"].split(":")[0] for p in drawn] == ["VGPM", "VGPM", "CBPM", "CBPM"]
