"""The scientist's own files, end to end: a twin experiment *through the files*.

On a small OCIM2-layout operator written here (`bcp-hpc export` of the tiny world), the package makes
"observations" from known parameters; this test writes them, and every forcing field, in the real
public formats (WOA-like and GLODAP-like NetCDF, Ocean Productivity HDF4 NPP, 2-D NetCDF surface
forcing), `bcp-hpc data build` reads them back, and the real-observation path (not the synthetic
twin) recovers the parameters within 2 sigma: the P model and the joint model, on 1 and 2 ranks."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("netCDF4", reason="netCDF4 (Debian python3-netcdf4) writes the WOA/GLODAP-like files")
pytest.importorskip("pyhdf", reason="pyhdf (Debian python3-hdf4) writes the Ocean Productivity files")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
from datafiles import write_op_hdf4, write_woa_like  # noqa: E402

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           OPENBLAS_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1")
CLI = [sys.executable, "-m", "bcp_hpc.cli.main"]
P_TRUTH = {"alpha": 0.02, "beta": 0.6, "b": 1.0, "kappa_d": 1.0 / (0.4 * 365 * 86400)}
J_TRUTH_FACTORS = {"sigP": 1.08, "bP": 0.94, "sigC": 1.1, "bC": 1.06, "kdC": 0.9, "rR": 1.1}


def cli(*args, ranks=1, timeout=1500, cwd=None):
    pre = ["mpirun", "-n", str(ranks), "--oversubscribe"] if ranks > 1 else []
    return subprocess.run(pre + CLI + list(args), capture_output=True, text=True, env=ENV, timeout=timeout, cwd=cwd)


def write_surface_nc(path, values, lat, lon, variable, units):
    import netCDF4
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        for name, vals, u in (("lat", lat, "degrees_north"), ("lon", lon, "degrees_east")):
            v = nc.createVariable(name, "f8", (name,))
            v.units = u
            v[:] = vals
        v = nc.createVariable(variable, "f8", ("lat", "lon"), fill_value=-1e30)
        v.units = units
        v[:] = np.where(np.isfinite(values), values, -1e30)


class Files:
    """The public-format files of one world (grid = the exported operator's), written in ``folder``."""

    def __init__(self, folder, grid, world):
        self.d = folder
        self.g = grid
        self.lat, self.lon = grid.lat, grid.lon
        self.depth_bnds = np.stack([grid.zw, grid.zw + grid.dz], axis=1)
        self.T3 = grid.to3d(world.temperature)
        self.S3 = grid.to3d(world.forcing("salinity"))
        from bcp_hpc.data.climatology import insitu_density
        self.rho = insitu_density(grid, self.T3, self.S3)          # what `data build` converts umol/kg with
        self.recipe = ["[grid]", 'source = "op.mat"']

    def _cube(self, vec):
        """(depth, lat, lon) for a WOA/GLODAP file from a natural-order n-vector."""
        return np.transpose(self.g.to3d(vec), (2, 0, 1))

    def woa(self, name, field, vec, variable, units, per_kg=False):
        v3 = self.g.to3d(vec) * (1000.0 / self.rho if per_kg else 1.0)
        write_woa_like(os.path.join(self.d, f"{name}.nc"), np.transpose(v3, (2, 0, 1)), self.lat, self.lon, self.g.zt,
                       depth_bnds=self.depth_bnds, variable=variable, units=units)
        self.recipe += [f"[fields.{field}]", f'file = "{name}.nc"', f'variable = "{variable}"']

    def glodap(self, name, field, vec, variable):
        """Binned bottle observations with GLODAP's variable names and units (NaN where unobserved), on the
        model's layers with depth bounds (so that binning them back is exact)."""
        self.woa(name, field, vec, variable, "micro-mol kg-1", per_kg=True)

    def npp(self, product, map2d):
        os.makedirs(os.path.join(self.d, "npp"), exist_ok=True)
        # Ocean Productivity layout: north to south, from -180 E
        half = map2d.shape[1] // 2
        op = np.roll(map2d, half, axis=1)[::-1]
        for mo in range(12):
            doy = (np.datetime64(f"2005-{mo + 1:02d}-01") - np.datetime64("2005-01-01")).astype(int) + 1
            write_op_hdf4(os.path.join(self.d, "npp", f"{product}.2005{doy:03d}.hdf" + (".gz" if mo % 3 == 0 else "")),
                          op)
        self.recipe += [f"[npp.{product}]", f'files = "npp/{product}.*.hdf*"']

    def surface(self, name, map2d, units):
        write_surface_nc(os.path.join(self.d, f"{name}.nc"), map2d, self.lat, self.lon, name, units)
        self.recipe += [f"[forcing.{name}]", f'file = "{name}.nc"', f'variable = "{name}"']

    def build(self, out="inputs.h5"):
        recipe = os.path.join(self.d, out + ".toml")
        with open(recipe, "w") as fh:
            fh.write("\n".join(self.recipe) + "\n")
        r = cli("data", "build", recipe, "--out", os.path.join(self.d, out))
        assert r.returncode == 0, r.stderr[-3000:]
        return os.path.join(self.d, out)


#: where the truth is below this (mmol m-3) a box is not "observed": a crude world's near-zero and negative
#: values (well above the filter's DIP floor of 0.05, so that noise seldom crosses it)
FLOOR = {"DIP": 0.1, "DIC": 0.0, "ALK": 0.0, "O2": 0.1}


def _observe(field, V, frac, seed, coverage=0.6, observable="DIP"):
    rng = np.random.default_rng(seed)
    mean = (field * V).sum() / V.sum()
    std = frac * np.sqrt((V * (field - mean) ** 2).sum() / V.sum())
    obs = field + std * np.sqrt(V[rng.random(field.size) < 2].mean() / V) * rng.standard_normal(field.size)
    obs[rng.random(field.size) >= coverage] = np.nan
    obs[(field < FLOOR[observable]) | (obs <= 0)] = np.nan          # as bottle data: no negative values
    return obs


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Forcing files of the tiny world, its operator in the OCIM2 layout, and the twin truths of the P and
    joint models computed with the package on that operator and the built forcing."""
    from bcp_hpc.grid.distributed import DistributedGrid
    from bcp_hpc.models.system import ModelSystem
    from bcp_hpc.operators.world import load_world
    from bcp_hpc.petsc_env import import_petsc4py
    from bcp_hpc.solvers.steady import SteadyState
    PETSc = import_petsc4py()
    d = str(tmp_path_factory.mktemp("realdata"))
    assert cli("export", "--world", "tiny", "--out", os.path.join(d, "op.mat")).returncode == 0
    gen = load_world("tiny")                                   # the package's synthetic forcing, as "data"
    g = gen.grid
    f = Files(d, g, gen)
    f.woa("woa_t", "temperature", gen.temperature, "t_an", "degrees_celsius")
    f.woa("woa_s", "salinity", gen.forcing("salinity"), "s_an", "1")
    f.woa("woa_p", "po4", gen.dip_gamma, "p_an", "micromoles_per_kilogram", per_kg=True)
    f.woa("woa_i", "si", gen.forcing("silicate"), "i_an", "micromoles_per_kilogram", per_kg=True)
    f.npp("vgpm", gen.npp("vgpm"))
    f.surface("piston_velocity", gen.forcing("piston_velocity"), "m s-1")
    f.surface("sea_level_pressure", np.where(g.mask[:, :, 0], 1.0, np.nan), "atm")
    pme = np.full(g.shape[:2], np.nan)
    top = g.box_k == 0
    pme[g.box_ilat[top], g.box_ilon[top]] = gen.forcing("pme")[top] * g.dz[0]      # m s-1 of freshwater
    f.surface("pme", pme, "m s-1")
    forcing_only = f.build("forcing.h5")
    world = load_world("ocim2", os.path.join(d, "op.mat"), inputs=forcing_only)
    V = g.box_volume
    dgrid = DistributedGrid(g, PETSc.COMM_WORLD)
    # P truth (the P cycle's twin truth, sigma2 = 0)
    from bcp_hpc.cycles.phosphorus.model import p_model
    pm = p_model(g, world.npp("vgpm"), world.dip_gamma, 2.1)
    pm.parameters.set(**P_TRUTH)
    with SteadyState(ModelSystem(pm, dgrid, world.T), prefix="rdp_") as ss:
        ss.solve()
        p_state = ss.system.to_natural(ss.u)
        ss.system.destroy()
    # joint truth: the defaults perturbed; its restoring targets and virtual-flux means are those of its own
    # state (a fixed point), as the real-observation path derives them from the observations
    from bcp_hpc.cycles.pco.model import ALK_MEAN, S_ALK, S_DIC, joint_model
    c = {"dip_mean": 2.1, "alk_mean": ALK_MEAN, "s_dic": S_DIC, "s_alk": S_ALK}
    for _ in range(3):
        jm = joint_model(world, world.npp("vgpm"), c["dip_mean"], alk_mean=c["alk_mean"], s_dic=c["s_dic"],
                         s_alk=c["s_alk"])
        jm.parameters.set(**{k: jm.parameters[k].value * v for k, v in J_TRUTH_FACTORS.items()})
        with SteadyState(ModelSystem(jm, dgrid, world.T), prefix="rdj_") as ss:
            ss.solve()
            j_state = ss.system.to_natural(ss.u)
            ss.system.destroy()
        names = jm.tracer_names
        c["s_dic"] = float((j_state[names.index("DIC")] * V)[top].sum() / V[top].sum())
        c["s_alk"] = float((j_state[names.index("ALK")] * V)[top].sum() / V[top].sum())
    j_truth = {n: jm.parameters[n].value for n in jm.parameters.optimized}
    # observations, in the public formats
    obs = {"DIP_P": _observe(p_state[0], V, 0.002, 1, coverage=0.8)}
    for k, nm in enumerate(("DIP", "DIC", "ALK", "O2")):
        obs[nm] = _observe(j_state[names.index(nm)], V, 0.02, 10 + k, coverage=0.9, observable=nm)
    return {"dir": d, "files": f, "grid": g, "p_obs": obs["DIP_P"], "j_obs": obs, "j_truth": j_truth, "j_constants": c}


def _p_inputs(files):
    """The P model's inputs: forcing plus GLODAP-like observed phosphate."""
    f = files["files"]
    base = list(f.recipe)                                   # the forcing sections
    f.glodap("glodap_p", "po4_obs", files["p_obs"], "PO4")
    path = f.build("inputs_p.h5")
    f.recipe = base
    return path


def _j_inputs(files):
    f = files["files"]
    base = list(f.recipe)
    o = files["j_obs"]
    f.glodap("glodap_p2", "po4_obs", o["DIP"], "PO4")
    f.glodap("glodap_dic", "dic_obs", o["DIC"] + 50.0, "TCO2")      # observed DIC holds 50 of anthropogenic CO2
    f.woa("cant", "dic_ant", np.full(files["grid"].nwet, 50.0), "Cant", "micromoles_per_kilogram", per_kg=True)
    f.glodap("glodap_alk", "alk_obs", o["ALK"], "TAlk")
    f.glodap("glodap_o2", "o2_obs", o["O2"], "oxygen")
    path = f.build("inputs_j.h5")
    f.recipe = base
    return path


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2])
def test_p_model_twin_through_the_files(files, ranks, tmp_path):
    inputs = _p_inputs(files)
    cfg = tmp_path / "p.toml"
    # the restoring's mean phosphate as the truth had it (by default it is the observed mean, which the
    # crude tiny world's few extreme boxes, dropped by the outlier filter, would bias)
    cfg.write_text(f'[world]\nsource = "ocim2"\npath = "{files["dir"]}/op.mat"\ninputs = "{inputs}"\n'
                   '[observations]\ndip = "inputs"\ndip_mean = 2.1\n')
    out = tmp_path / "out"
    r = cli("invert", "--config", str(cfg), "--out", str(out), ranks=ranks)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "forcing: " in r.stdout and "synthetic stand-ins" not in r.stdout
    res = json.loads((out / "result.json").read_text())
    assert res["converged"] and res["observations"]["kind"] == "inputs" and res["observations"]["field"] == "po4_obs"
    for n, t in P_TRUTH.items():
        p = res["parameters"][n]
        assert abs(np.log(p["value"]) - np.log(t)) <= 2 * p["sigma_x"], (n, p["value"], t, p["sigma_x"])
    assert res["diagnostics"]["r2_dip"] > 0.99


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2])
def test_joint_model_twin_through_the_files(files, ranks, tmp_path):
    inputs = _j_inputs(files)
    cfg = tmp_path / "j.toml"
    # the restoring targets and virtual-flux means the truth had (by default they are the observations'
    # volume-weighted means, which sampling moves: checked below)
    c = files["j_constants"]
    cfg.write_text(f'[model]\ncycle = "PCO"\n[world]\nsource = "ocim2"\npath = "{files["dir"]}/op.mat"\n'
                   f'inputs = "{inputs}"\n[joint]\nobservations = "inputs"\n'
                   + "".join(f"{k} = {v!r}\n" for k, v in c.items()))
    out = tmp_path / "out"
    r = cli("invert", "--config", str(cfg), "--out", str(out), ranks=ranks)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    res = json.loads((out / "joint_result.json").read_text())
    info = res["observations"]
    assert info["kind"] == "inputs" and info["tracers"]["DIC"]["anthropogenic_removed"] == "dic_ant"
    assert info["constants"] == pytest.approx(c) and info["constants_given"] == sorted(c)
    fit = res["diagnostics"]["fit"]
    assert all(fit[t]["r2"] > 0.99 for t in ("DIP", "DIC", "ALK", "O2")), fit
    # the P model recovers every parameter within 2 sigma (above); the joint model's 21 parameters include
    # weak, strongly correlated directions (DOC_r removal kru/krd, the P:C pair cc/dd) where its Laplace
    # error bars and its stopping rule (|g| < 2e-3 |f|) leave z up to about 3, as in its in-memory twin
    # experiment: every constrained parameter within 3.5 sigma, most within 2
    truth = files["j_truth"]
    z = {}
    for n, p in res["parameters"].items():
        if p["sigma"] is None or p["at_bound"]:
            continue
        x, xt = (np.log(p["value"]), np.log(truth[n])) if p["transform"] == "log" else (p["value"], truth[n])
        z[n] = (x - xt) / p["sigma_x"]
    checked = len(z)
    assert all(abs(v) <= 3.5 for v in z.values()), z
    assert sum(abs(v) <= 2 for v in z.values()) >= 0.8 * checked, z
    assert checked >= 15


def test_a_users_operator_without_forcing_is_a_clear_error(files, tmp_path):
    r = cli("invert", "--world", "ocim2", "--operator", os.path.join(files["dir"], "op.mat"), "--out",
            str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "has no npp" in r.stderr and "po4" in r.stderr and "--inputs" in r.stderr


def test_real_joint_observations_missing_are_named(files, tmp_path):
    inputs = os.path.join(files["dir"], "forcing.h5")
    cfg = tmp_path / "j.toml"
    cfg.write_text(f'[model]\ncycle = "PCO"\n[world]\nsource = "ocim2"\npath = "{files["dir"]}/op.mat"\n'
                   f'inputs = "{inputs}"\n[joint]\nobservations = "inputs"\n')
    r = cli("invert", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no DIP observations" in r.stderr and "[fields.po4_obs]" in r.stderr


def test_constants_derived_from_the_observations(files, tmp_path):
    """Appendix A.3: without given values, the restoring targets and virtual-flux means are the observations'
    volume-weighted means (all depths; layer 1 for the virtual fluxes), recomputed here from the built file."""
    from bcp_hpc.cycles.pco.run import real_observations
    from bcp_hpc.experiments.description import RunDescription
    inputs = _j_inputs(files)
    run = RunDescription.load(None, {"model": {"cycle": "PCO"}, "joint": {"observations": "inputs"},
                                     "world": {"inputs": [inputs]}})
    g = files["grid"]

    class S:
        pass
    setup = S()
    setup.run, setup.grid = run, g
    obs, info = real_observations(setup)
    V = g.box_volume
    top = g.box_k == 0
    for key, name, where in (("dip_mean", "DIP", None), ("alk_mean", "ALK", None), ("s_dic", "DIC", top),
                             ("s_alk", "ALK", top)):
        ok = np.isfinite(obs[name]) & (True if where is None else where)
        assert info["constants"][key] == pytest.approx((obs[name][ok] * V[ok]).sum() / V[ok].sum(), rel=1e-12)
    # DIC with the anthropogenic 50 removed: the observations equal what was written minus 50 (in mmol m-3)
    assert np.nanmean(obs["DIC"]) == pytest.approx(np.nanmean(files["j_obs"]["DIC"]), rel=2e-3)


def _interrupt_when(cmd, path, timeout=900):
    """Start ``cmd`` on 2 ranks and send SIGINT as soon as ``path`` exists; the run must end non-zero."""
    import signal
    import time
    p = subprocess.Popen(["mpirun", "-n", "2", "--oversubscribe"] + CLI + cmd, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not os.path.exists(path):
        assert p.poll() is None, "the run ended before it could be interrupted"
        assert time.time() - t0 < timeout
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode != 0 and "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.slow
def test_p_sweep_on_the_users_files_interrupted_and_resumed_on_two_ranks(files, tmp_path):
    """The paper's sigma2 sweep on the user's operator and inputs: interrupted on 2 ranks after its first
    run, resumed, it ends with the runs, tables and fit of the uninterrupted sweep on 1 rank."""
    inputs = _p_inputs(files)
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'[world]\nsource = "ocim2"\npath = "{files["dir"]}/op.mat"\ninputs = "{inputs}"\n'
                   '[observations]\ndip = "inputs"\ndip_mean = 2.1\n')
    values = [round(0.025 * i, 3) for i in range(21)]        # runs of a fraction of a second: room to interrupt
    args = ["experiment", "sigma2-sweep", "--config", str(cfg), "--sigma2", ",".join(map(str, values)),
            "--no-sensitivity-runs"]
    ref = cli(*args, "--out", str(tmp_path / "ref"), "--json", str(tmp_path / "ref.json"))
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "cut"
    _interrupt_when(args + ["--out", str(out)], out / "runs_done.json")
    done = json.loads((out / "runs_done.json").read_text())["runs"]
    assert 1 <= len(done) < len(values)
    r = cli(*args, "--out", str(out), "--json", str(tmp_path / "cut.json"), "--resume", ranks=2)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.count("already done (resume)") == len(done)
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("ref.json", "cut.json"))
    assert [x["sigma2"] for x in b["runs"]] == values
    for x, y in zip(a["runs"], b["runs"]):
        assert x["converged"] and y["converged"] and x["r2_dip"] > 0.99
        assert y["npp_pg_c_per_yr"] == pytest.approx(x["npp_pg_c_per_yr"], rel=1e-5)
        for n, p in x["parameters"].items():
            assert y["parameters"][n]["value"] == pytest.approx(p["value"], rel=1e-4), n
    assert b["fit"]["a"] == pytest.approx(a["fit"]["a"], rel=1e-4)
    assert b["fit"]["b"] == pytest.approx(a["fit"]["b"], rel=1e-3, abs=1e-6)
    assert (out / "table_S1_parameters.csv").exists() and (out / "sigma2_sweep.h5").exists()


@pytest.mark.slow
def test_joint_products_on_the_users_files_interrupted_and_resumed(files, tmp_path):
    """joint-products against the user's observations for two NPP products (Ocean Productivity HDF4 files):
    on 2 ranks, interrupted during the second product and resumed, each product ends at the optimum of an
    uninterrupted single inversion on 1 rank forced by that product, and the experiment's tables are written."""
    from bcp_hpc.operators.world import load_world
    f = files["files"]
    base = list(f.recipe)
    f.npp("cbpm", load_world("tiny").npp("cbpm"))
    inputs = _j_inputs(files)
    f.recipe = base
    c = files["j_constants"]
    cfg = tmp_path / "j.toml"
    text = (f'[model]\ncycle = "PCO"\n[world]\nsource = "ocim2"\npath = "{files["dir"]}/op.mat"\n'
            f'inputs = "{inputs}"\n[joint]\nobservations = "inputs"\nnpp_products = ["vgpm", "cbpm"]\n'
            + "".join(f"{k} = {v!r}\n" for k, v in c.items()))
    cfg.write_text(text)
    args = ["experiment", "joint-products", "--config", str(cfg)]
    out = tmp_path / "cut"
    _interrupt_when(args + ["--out", str(out)], out / "iterations_joint_cbpm.jsonl", timeout=1500)
    assert (out / "checkpoint_joint_vgpm.h5").exists() and not (out / "joint_products.json").exists()
    r = cli(*args, "--out", str(out), "--json", str(tmp_path / "cut.json"), "--resume", ranks=2)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / "cut.json").read_text())
    assert res["products"] == ["vgpm", "cbpm"] and res["cross_experiment"]["forcing"] == "cbpm"
    for prod in ("vgpm", "cbpm"):
        one_cfg = tmp_path / f"{prod}.toml"
        one_cfg.write_text(text.replace("[world]\n", f'[world]\nnpp_product = "{prod}"\n'))
        one = cli("invert", "--config", str(one_cfg), "--out", str(tmp_path / prod))
        assert one.returncode == 0, one.stderr[-3000:]
        ref = json.loads((tmp_path / prod / "joint_result.json").read_text())
        got = res["runs"][prod]
        assert got["converged"] and ref["converged"]
        # no parameter reported as known exactly: along kru the objective can curve down at the end (a
        # negative Hessian eigenvalue), where H^-1 would give kru and etau a sigma of 0
        for run in (got, ref):
            assert all(v["sigma"] is None or v["sigma"] > 0 for v in run["parameters"].values()), run["parameters"]
        # the same optimum: both runs stopped by the posterior-scaled test, and the two ends indistinguishable
        # by their likelihood ratio (below 1); which way round-off sends each run along the flat kru
        # direction decides where it ends on it
        steps = got["remaining_step_sigma"] + ref["remaining_step_sigma"]
        assert steps < 0.1
        s2 = ref["posterior"]["noise_variance"]
        assert 2 * abs(got["objective"] - ref["objective"]) / s2 < 1.0, (got["objective"], ref["objective"], s2)
        assert got["fit_r2"] == pytest.approx({t: v["r2"] for t, v in ref["diagnostics"]["fit"].items()}, rel=1e-6)
