"""Every message the program gives can be trusted: bad input is a clear error (exit 2, no traceback,
nothing half-written, nothing older overwritten), a resume of another problem is refused, a run says
when it did not converge, interrupts end every rank promptly, outputs are tidy and readable."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bcp_hpc.inversion.posterior import constrained_distance_sigma

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           OPENBLAS_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1")
CLI = [sys.executable, "-m", "bcp_hpc.cli.main"]


def cli(*args, cwd=None, timeout=600):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)


def bad(r, *words):
    """Exit 2, every word in the message, no traceback."""
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)


# ------------------------------------------------------------------ 1. resume belongs to the same problem

def test_resume_of_another_problem_is_refused_with_the_differing_keys(tmp_path):
    out = tmp_path / "D"
    args = ["run", "--world", "tiny", "--out", str(out), "--sigma2", "0,0.2", "--no-sensitivity-runs"]
    assert cli(*args).returncode == 0
    summary = (out / "summary.json").read_text()
    cfg = tmp_path / "C.toml"
    cfg.write_text("[observations]\nseed = 7\nnoise = 0.2\n")
    bad(cli(*args, "--resume", "--config", str(cfg)), "another problem", "observations.noise", "observations.seed")
    bad(cli(*(a if a != "tiny" else "embedded" for a in args), "--resume"), "another problem", "world.source")
    assert (out / "summary.json").read_text() == summary          # nothing older overwritten
    # a single inversion's checkpoint too
    inv = tmp_path / "E"
    assert cli("invert", "--world", "tiny", "--out", str(inv), "--sigma2", "0.3").returncode == 0
    bad(cli("invert", "--world", "tiny", "--out", str(inv), "--resume"), "another problem", "model.sigma2")
    r = cli("invert", "--world", "tiny", "--out", str(inv), "--resume", "--sigma2", "0.3")
    assert r.returncode == 0 and "resuming from" in r.stderr
    # a corrupt list of finished runs is named
    (out / "runs_done.json").write_text("{not json")
    bad(cli(*args, "--resume"), "runs_done.json")


# ------------------------------------------------------------------ 2, 3. flags used; convergence said

def test_invert_sigma2_is_used_and_non_convergence_is_said(tmp_path):
    r = cli("invert", "--world", "tiny", "--out", str(tmp_path / "a"), "--sigma2", "0.3")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "a" / "result.json").read_text())
    assert res["config"]["model"]["sigma2"] == 0.3
    assert res["diagnostics"]["npp_dopl_pg_c_per_yr"] == pytest.approx(0.3 * res["diagnostics"]["npp_pg_c_per_yr"])
    cfg = tmp_path / "m.toml"
    cfg.write_text("[inversion]\nmax_it = 2\n")
    r = cli("invert", "--world", "tiny", "--out", str(tmp_path / "b"), "--config", str(cfg))
    assert r.returncode == 0
    assert "stopped (not converged) after 2 iterations" in r.stdout and "DIVERGED_MAXITS" in r.stdout
    res = json.loads((tmp_path / "b" / "result.json").read_text())
    assert res["converged"] is False and res["tao_reason_name"].startswith("DIVERGED_MAXITS")
    cfg.write_text("[inversion]\nmax_it = -5\n")
    bad(cli("invert", "--world", "tiny", "--out", str(tmp_path / "c"), "--config", str(cfg)),
        "[inversion] max_it = -5", "integer >= 1")


# ------------------------------------------------------------------ 4. inputs used or refused

def test_inputs_are_used_or_refused(tmp_path):
    from bcp_hpc.errors import InputError
    from bcp_hpc.operators.world import load_world
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="none of the fields a run takes"):
        load_world("tiny", inputs=str(empty))
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("hello")
    bad(cli("invert", "--world", "tiny", "--inputs", str(unrelated), "--out", str(tmp_path / "o")),
        str(unrelated), "none of the fields")
    # an input file: written for the tiny grid, then spoiled one way at a time
    import h5py

    from bcp_hpc.data.synthetic import synthetic_inputs
    from bcp_hpc.grid.embedded import embedded_grid
    from bcp_hpc.data.inputs import write_inputs
    g = embedded_grid(nlat=15, nlon=30, nz=8)
    good = tmp_path / "good.h5"
    fields, npp = synthetic_inputs(g)
    write_inputs(str(good), g, fields=fields, npp=npp)
    w = load_world("tiny", inputs=str(good))
    assert w.info["forcing"]["po4"].endswith(":po4") and "vgpm" in w.info["forcing"]["npp"]

    def spoiled(name, change):
        p = tmp_path / name
        p.write_bytes(good.read_bytes())
        with h5py.File(p, "r+") as h:
            change(h)
        return str(p)

    def no_npp(h):
        for k in [k for k in h if k.startswith("npp_")]:
            del h[k]
    with pytest.raises(InputError, match="no NPP product"):
        load_world("tiny", inputs=spoiled("nonpp.h5", no_npp))
    with pytest.raises(InputError, match="units 'degC', expected 'mmol m-3'") as e:
        load_world("tiny", inputs=spoiled("units.h5", lambda h: h["po4"].attrs.__setitem__("units", "degC")))
    assert "po4" in str(e.value)

    def negative(h):
        a = h["po4"][()]
        a[np.isfinite(a)] = -a[np.isfinite(a)]
        h["po4"][...] = a
    with pytest.raises(InputError, match="values outside the physical range"):
        load_world("tiny", inputs=spoiled("neg.h5", negative))

    def altered_mask(h):
        m = h["mask"][()]
        m[0, 0, 0] = 1 - m[0, 0, 0]
        h["mask"][...] = m
    with pytest.raises(InputError, match="mask dataset differs"):
        load_world("tiny", inputs=spoiled("mask.h5", altered_mask))

    def hot(h):
        a = h["temperature"][()]
        a[np.isfinite(a)] = 1e6
        h["temperature"][...] = a
    with pytest.raises(InputError, match="temperature"):
        load_world("tiny", inputs=spoiled("hot.h5", hot))


# ------------------------------------------------------------------ 5. interrupts

def _wait_for(path, timeout):
    t0 = time.time()
    while not os.path.exists(path):
        if time.time() - t0 > timeout:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.1)


@pytest.mark.slow
def test_sigint_ends_every_rank_promptly_and_keeps_the_checkpoint(tmp_path):
    """Ctrl-C on `mpirun -n 2`: both ranks end within seconds, one line, no traceback; the checkpoint
    reads and --resume continues to the uninterrupted optimum."""
    from bcp_hpc.inversion.checkpoint import read_checkpoint
    out = tmp_path / "o"
    cmd = ["mpirun", "-n", "2", "--oversubscribe"] + CLI + ["invert", "--world", "embedded", "--out", str(out)]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "checkpoint_invert.h5", 300)
    time.sleep(1.0)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=30)
    assert time.time() - t0 < 15
    assert p.returncode != 0
    assert "Traceback" not in stderr and stderr.count("interrupted (") == 1, stderr[-3000:]
    ck = read_checkpoint(str(out / "checkpoint_invert.h5"), 4)
    assert ck["iteration"] >= 0
    ps = subprocess.run(["pgrep", "-f", f"--out {out}"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", "a rank outlived the interrupt"
    r = cli("invert", "--world", "embedded", "--out", str(out), "--resume", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    full = cli("invert", "--world", "embedded", "--out", str(tmp_path / "full"), timeout=900)
    assert full.returncode == 0
    a = json.loads((out / "result.json").read_text())
    b = json.loads((tmp_path / "full" / "result.json").read_text())
    assert a["objective"] == pytest.approx(b["objective"], rel=1e-9)


def test_sigint_of_one_process_exits_130(tmp_path):
    out = tmp_path / "o"
    p = subprocess.Popen(CLI + ["invert", "--world", "embedded", "--out", str(out)], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "iterations_invert.jsonl", 300)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=30)
    assert p.returncode == 130 and "interrupted (SIGINT)" in stderr and "Traceback" not in stderr
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


@pytest.mark.slow
def test_kills_during_checkpoint_writes_always_resume_to_the_same_optimum(tmp_path):
    """SIGKILL at random moments (several, bounded in time); every --resume continues and the last one
    reaches the uninterrupted optimum; no temporary file survives the next run."""
    rng = random.Random(5)
    ref = tmp_path / "ref"
    assert cli("invert", "--world", "embedded", "--out", str(ref), timeout=900).returncode == 0
    out = tmp_path / "killed"
    ck = out / "checkpoint_invert.h5"
    kills = 0
    t_end = time.time() + 240
    while kills < 6 and time.time() < t_end:
        args = CLI + ["invert", "--world", "embedded", "--out", str(out)] + (["--resume"] if kills else [])
        before = os.stat(ck).st_mtime_ns if ck.exists() else 0
        p = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait for the next checkpoint write to start (its temporary file) or end, then kill at a random moment
        while p.poll() is None and time.time() < t_end:
            if any(f.endswith(".tmp") for f in os.listdir(out)) if out.exists() else False:
                break
            if ck.exists() and os.stat(ck).st_mtime_ns != before:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        if p.poll() is not None:
            break
        p.kill()
        p.wait()
        kills += 1
    r = cli("invert", "--world", "embedded", "--out", str(out), "--resume", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert kills >= 2
    a = json.loads((out / "result.json").read_text())
    b = json.loads((ref / "result.json").read_text())
    assert a["objective"] == pytest.approx(b["objective"], rel=1e-9)
    for n, p in b["parameters"].items():        # the same optimum: well within its uncertainty
        assert abs(a["parameters"][n]["value"] - p["value"]) <= 1e-3 * p["sigma"], (n, a["parameters"][n], p)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    lines = [json.loads(x) for x in (out / "iterations_invert.jsonl").read_text().splitlines()]
    its = [rec["iteration"] for rec in lines]
    assert its == sorted(set(its)), its                          # no record twice after the resumes


# ------------------------------------------------------------------ 6, 10. bad input: clear errors

@pytest.mark.parametrize("args, words", [
    (["invert", "--world", "tiny", "--sigma2", "abc"], ["--sigma2 'abc'"]),
    (["run", "--world", "tiny", "--sigma2", "0,,0.1"], ["--sigma2 '0,,0.1'"]),
    (["invert", "--world", "tiny", "-inv_tao_type", "foo"], ["-inv_tao_type foo"]),
    (["invert", "--cycle", "PCO", "--world", "tiny", "-inv_stop_sigma", "nan"], ["-inv_stop_sigma", ">= 0", "'nan'"]),
    (["invert", "--world", "tiny", "-inv_stop_sigma", "abc"], ["-inv_stop_sigma", "'abc'"]),
    (["slurm", "render", "forward", "--world", "atlantis"], ["atlantis", "[world] source"]),
    (["slurm", "render", "forward", "--nodes", "-1"], ["[slurm] nodes = -1"]),
    (["slurm", "render", "forward", "--ranks-per-node", "-8"], ["[slurm] ranks_per_node = -8"]),
    (["slurm", "render", "forward", "--time", "forever"], ["[slurm] time = 'forever'", "wall time"]),
    (["slurm", "render", "forward", "--mem", "lots"], ["[slurm] mem = 'lots'"]),
])
def test_bad_flags_are_clear_errors(args, words, tmp_path):
    if "invert" in args or "run" in args:
        args = args + ["--out", str(tmp_path / "o")]
    bad(cli(*args), *words)


def test_settings_of_another_cycle_are_refused_from_flags_and_noted_from_files(tmp_path):
    """A flag that only another cycle uses is an error; the experiments offer only their own flags; a config
    file's settings of another cycle are named as unused (a file may describe several cycles' runs)."""
    bad(cli("invert", "--cycle", "PCO", "--world", "tiny", "--sigma2", "0.3", "--out", str(tmp_path / "o")),
        "[model] sigma2 (cycle P)", "cycle PCO does not use")
    assert not (tmp_path / "o").exists()
    r = cli("experiment", "joint-products", "--world", "tiny", "--sigma2", "0.1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "unrecognized arguments: --sigma2" in r.stderr
    from bcp_hpc.experiments.description import RunDescription
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nsigma2 = 0.2\nborate = \"rounded\"\n[experiment]\nsigma2_values = [0.0]\n"
                   "[joint]\nnoise_fraction = 0.01\n")
    src = f"config file {cfg}"
    as_p = RunDescription.load(str(cfg))
    assert as_p.foreign_keys() == [(src, "[model] borate", ["PCO"]), (src, "[joint] noise_fraction", ["PCO"])]
    as_pco = RunDescription.load(str(cfg), {"model": {"cycle": "PCO"}})
    assert as_pco.foreign_keys() == [(src, "[model] sigma2", ["P"]), (src, "[experiment] sigma2_values", ["P"])]


@pytest.mark.parametrize("content, words", [
    ("[observations]\nnoise = \"abc\"\n", ["[observations] noise = 'abc'", "a number"]),
    ("[observations]\nnoise = -0.1\n", ["[observations] noise = -0.1", ">= 0"]),
    ("[joint]\nnoise_fraction = -1\n", ["[joint] noise_fraction"]),
    ("[joint]\nstart_perturbation = -1\n", ["[joint] start_perturbation"]),
    ("[model]\nsigma2 = \"abc\"\n", ["[model] sigma2"]),
    ("[slurm]\ntime = \"forever\"\n", ["[slurm] time"]),
])
def test_bad_config_values_are_clear_errors(content, words, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    bad(cli("invert", "--world", "tiny", "--config", str(cfg), "--out", str(tmp_path / "o")), str(cfg), *words)
    assert not (tmp_path / "o" / "resolved_config.json").exists()


def test_config_that_is_a_folder_or_binary(tmp_path):
    bad(cli("invert", "--config", str(tmp_path), "--out", str(tmp_path / "o")), "is a directory")
    b = tmp_path / "b.toml"
    b.write_bytes(bytes(range(256)))
    bad(cli("invert", "--config", str(b), "--out", str(tmp_path / "o")), "not a text file")


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (["invert", "--world", "tiny"], ["run", "--world", "tiny"], ["invert", "--cycle", "PCO", "--world", "tiny"]):
        bad(cli(*args, "--out", str(afile)), "not a directory")
        bad(cli(*args, "--out", str(tmp_path / "o"), "--json", str(tmp_path)), "--json", "is a directory")
    bad(cli("export", "--world", "tiny", "--out", str(tmp_path / "missing" / "x.h5")), "does not exist")
    bad(cli("slurm", "render", "forward", "--out", str(tmp_path)), "is a directory")
    bad(cli("data", "build", "--synthetic", "--grid", "tiny", "--out", str(tmp_path)), "is a directory")
    bad(cli("data", "check", str(tmp_path), "--json", str(tmp_path)), "is a directory")
    assert afile.read_text() == "x"


def test_data_check_flags_bad_npp(tmp_path):
    import h5py

    from bcp_hpc.data.synthetic import synthetic_inputs
    from bcp_hpc.grid.embedded import embedded_grid
    from bcp_hpc.data.inputs import write_inputs
    g = embedded_grid(nlat=15, nlon=30, nz=8)
    for name, change in (("nan", lambda a: np.full_like(a, np.nan)), ("shape", lambda a: a[:-1])):
        p = tmp_path / f"{name}.h5"
        fields, npp = synthetic_inputs(g)
        write_inputs(str(p), g, fields=fields, npp=npp)
        with h5py.File(p, "r+") as h:
            a = change(h["npp_vgpm"][()])
            attrs = dict(h["npp_vgpm"].attrs)
            del h["npp_vgpm"]
            d = h.create_dataset("npp_vgpm", data=a)
            d.attrs["units"] = attrs["units"]
        r = cli("data", "check", str(p), "--grid", "tiny")
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert "npp_vgpm" in r.stdout and "error" in r.stdout


# ------------------------------------------------------------------ 7. unused options

def test_unused_petsc_options_are_reported(tmp_path):
    r = cli("invert", "--world", "tiny", "--out", str(tmp_path / "o"), "-inv_tao_max_itt", "1")
    assert r.returncode == 0
    assert "nothing used" in r.stderr and "-inv_tao_max_itt" in r.stderr
    r = cli("invert", "--world", "tiny", "--out", str(tmp_path / "p"), "-inv_tao_max_it", "3")
    assert "nothing used" not in r.stderr and "stopped (not converged) after 3" in r.stdout


# ------------------------------------------------------------------ 8. tidy output folders

def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`bcp-hpc plan | head -1`: a closed pipe (here closed before the command writes at all) ends the
    command with SIGPIPE's shell status and no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run(CLI + ["plan"], stdout=write_end, stderr=subprocess.PIPE, env=ENV, timeout=120)
    finally:
        os.close(write_end)
    err = r.stderr.decode()
    assert r.returncode == 141, err
    assert "Traceback" not in err and "Error" not in err, err


def test_output_folders_stay_tidy(tmp_path):
    out = tmp_path / "o"
    assert cli("invert", "--world", "tiny", "--out", str(out)).returncode == 0
    result = (out / "result.json").read_text()
    config = (out / "resolved_config.json").read_text()
    n_lines = len((out / "iterations_invert.jsonl").read_text().splitlines())
    # a rejected run leaves the folder as it was
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[parameters.b]\nvalue = 10\n")
    bad(cli("invert", "--world", "tiny", "--out", str(out), "--config", str(cfg)), "parameter 'b'")
    assert (out / "result.json").read_text() == result and (out / "resolved_config.json").read_text() == config
    # a temporary file a killed write left behind is removed; a new run starts a new log
    (out / ".checkpoint_invert.h5.abc123.h5.tmp").write_text("half")
    assert cli("invert", "--world", "tiny", "--out", str(out)).returncode == 0
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert len((out / "iterations_invert.jsonl").read_text().splitlines()) == n_lines
    # files follow the umask (readable by colleagues), not mkstemp's 0600
    mask = os.umask(0)
    os.umask(mask)
    for f in ("result.json", "state.h5", "checkpoint_invert.h5", "resolved_config.json"):
        assert os.stat(out / f).st_mode & 0o777 == 0o666 & ~mask, f


# ------------------------------------------------------------------ 11. unconstrained parameters

def test_unconstrained_parameters_are_reported_as_such():
    from bcp_hpc.cycles import registry
    from bcp_hpc.reports.inversion import summary_lines
    params = {"kru": {"value": 5e-12, "sigma": None, "lower_1sigma": None, "upper_1sigma": None, "sigma_x": 176.0,
                      "units": "s-1", "at_bound": False, "poorly_constrained": True},
              "alpha": {"value": 0.08, "sigma": 0.01, "lower_1sigma": 0.07, "upper_1sigma": 0.09, "sigma_x": 0.1,
                        "units": "s-1", "at_bound": False, "poorly_constrained": False}}
    payload = {"converged": True, "iterations": 3, "tao_reason_name": "CONVERGED_GATOL (3)", "objective": 1.0,
               "parameters": params, "eigen": {"best_constrained": {}, "worst_constrained": {}},
               "truth": {"kru": 5e-12, "alpha": 0.08}, "z_from_truth": {"alpha": 0.0}}
    cycle = registry.get("P")
    lines = [ln for ln in summary_lines(payload, registry.Cycle(**{**cycle.__dict__, "summary": ""}))]
    kru = next(ln for ln in lines if ln.strip().startswith("kru"))
    assert "unconstrained" in kru and "e+" not in kru


# ------------------------------------------------------------------ 12. files open in xarray

def test_result_checkpoint_and_export_files_open_in_xarray(tmp_path):
    xr = pytest.importorskip("xarray")
    out = tmp_path / "o"
    assert cli("invert", "--world", "tiny", "--out", str(out)).returncode == 0
    with xr.open_dataset(out / "state.h5", engine="h5netcdf") as ds:
        assert ds["DIP"].dims == ("depth", "lat", "lon") and ds["lat"].attrs["units"] == "degrees_north"
    with xr.open_dataset(out / "checkpoint_invert.h5", engine="h5netcdf") as ds:
        assert list(ds["parameter"].values) == ["alpha", "beta", "b", "kappa_d"] and ds["hessian"].shape == (4, 4)
    with xr.open_dataset(out / "checkpoint_invert.h5", engine="h5netcdf", group="state") as ds:
        assert ds["DIP"].dims == ("box",)
    exp = tmp_path / "t.h5"
    assert cli("export", "--world", "tiny", "--out", str(exp)).returncode == 0
    for group in ("grid", "transport"):
        with xr.open_dataset(exp, engine="h5netcdf", group=group) as ds:
            assert len(ds.data_vars) >= 3
    assert cli("inspect", str(exp)).returncode == 0


# ------------------------------------------------------------------ 9. joint resume and rank count

@pytest.mark.slow
def test_joint_inversion_resumed_or_on_two_ranks_ends_at_the_same_constrained_optimum(tmp_path):
    """The joint model's DOC_r removal rate in the surface layers (kru) is not constrained by the twin data
    on the tiny world: where TAO stops along it depends on round-off, so it is reported as
    unconstrained on every run. Each run stops once the optimum its Hessian predicts is less than 0.05
    posterior sigma away, and says how far: an uninterrupted run, a run interrupted and resumed, and a run
    on two ranks lie no further apart along the directions the data constrain than their remaining steps
    allow (each run within its own of the optimum), and their objectives within a twentieth of the noise
    variance (of a log-likelihood unit; the unconstrained kru is free to differ)."""
    base = ["invert", "--cycle", "PCO", "--world", "tiny"]
    assert cli(*base, "--out", str(tmp_path / "one")).returncode == 0
    r = subprocess.run(["mpirun", "-n", "2", "--oversubscribe"] + CLI + base + ["--out", str(tmp_path / "two")],
                       capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "resumed"
    p = subprocess.Popen(CLI + base + ["--out", str(out)], env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    log = out / "iterations_invert.jsonl"
    t0 = time.time()
    while time.time() - t0 < 300 and p.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 6:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=60)
    r = cli(*base, "--out", str(out), "--resume")
    assert r.returncode == 0 and "resuming from" in r.stderr
    assert "twin truth: the true state read from" in r.stderr     # not solved again
    assert "warm start: the steady state stored with the checkpoint's iterate" in r.stderr
    runs = [json.loads((tmp_path / d / "joint_result.json").read_text()) for d in ("one", "two", "resumed")]
    ref = runs[0]["parameters"]
    unconstrained = {n for n, v in ref.items() if v["sigma"] is None}
    assert unconstrained <= {"kru", "krd"}, unconstrained
    s2 = runs[0]["posterior"]["noise_variance"]
    for other in runs[1:]:
        assert {n for n, v in other["parameters"].items() if v["sigma"] is None} == unconstrained
        assert other["tao_reason_name"].startswith("CONVERGED_STEP_SIGMA"), other["tao_reason_name"]
        steps = other["remaining_step_sigma"] + runs[0]["remaining_step_sigma"]
        assert steps < 0.1
        assert abs(other["objective"] - runs[0]["objective"]) <= 0.05 * s2
        # apart along the directions the data constrain (posterior std <= 5 in transformed units), in sigma
        apart = constrained_distance_sigma(runs[0], other)
        # the quadratic model's prediction holds to second order only: twice the remaining steps
        assert apart <= 2.0 * steps, (apart, steps)
