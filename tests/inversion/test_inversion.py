import json
import subprocess
import sys

import numpy as np
import pytest

from bcp_hpc.config import load_config
from bcp_hpc.errors import ConfigError, InputError
from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.grid.embedded import synthetic_npp, synthetic_phosphate
from bcp_hpc.inversion.checkpoint import read_checkpoint
from bcp_hpc.inversion.objective import Objective, Observation
from bcp_hpc.inversion.posterior import (UNCONSTRAINED_SIGMA_X, constrained_distance_sigma, flat_decrease,
                                         noise_variance, posterior, remaining_step_sigma)
from bcp_hpc.inversion.tao_driver import Inversion
from bcp_hpc.cycles.phosphorus.model import p_model
from bcp_hpc.models.system import ModelSystem
from bcp_hpc.operators.circulation import synthetic_circulation
from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.reports.inversion import summary_lines
from bcp_hpc.solvers.steady import SteadyState

PETSc = import_petsc4py()
TRUTH = dict(alpha=0.08, beta=0.6, b=1.0, kappa_d=1.0 / (0.4 * 365 * 86400))
START = dict(alpha=0.05, beta=0.5, b=0.9, kappa_d=1.0 / (0.5 * 365 * 86400))


@pytest.fixture(scope="module")
def twin(small_grid):
    g = small_grid
    T, _ = synthetic_circulation(g)
    npp, po4 = synthetic_npp(g, "vgpm"), synthetic_phosphate(g)
    m = p_model(g, npp, po4, 2.1, sigma2=0.0)
    m.parameters.set(**TRUTH)
    sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_SELF), T)
    with SteadyState(sysm) as ss:
        dip = sysm.to_natural(ss.solve())[0]
    sysm.destroy()
    rng = np.random.default_rng(3)
    obs = dip + 0.02 * rng.standard_normal(g.nwet)
    obs[rng.random(g.nwet) > 0.6] = np.nan
    return g, T, npp, po4, obs


def make_objective(twin):
    g, T, npp, po4, obs = twin
    m = p_model(g, npp, po4, 2.1, sigma2=0.0)
    m.parameters.set(**START)
    sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_SELF), T)
    return m, Objective(sysm, [Observation("DIP", obs)])


def test_gradient_and_hessian_against_finite_differences(twin):
    m, obj = make_objective(twin)
    x0 = m.parameters.get_x()
    f, g, H = obj.evaluate(x0)
    h = 1e-5
    for i in range(len(x0)):
        e = np.zeros_like(x0)
        e[i] = h
        fp, gp, _ = obj.evaluate(x0 + e, order=1)
        fm, gm, _ = obj.evaluate(x0 - e, order=1)
        assert abs((fp - fm) / (2 * h) - g[i]) <= 1e-6 * np.abs(g).max()
        assert np.abs((gp - gm) / (2 * h) - H[i]).max() <= 1e-5 * np.abs(H).max()
    obj.destroy()
    obj.system.destroy()


def test_twin_experiment_recovers_parameters(twin, tmp_path):
    m, obj = make_objective(twin)
    inv = Inversion(obj, checkpoint=str(tmp_path / "ck.h5"), log_jsonl=str(tmp_path / "it.jsonl"))
    res = inv.run()
    assert res["iterations"] <= 30
    post = posterior(m.parameters, res["x"], res["objective"], res["hessian"], obj.n_obs)
    for n, t in TRUTH.items():
        p = post["parameters"][n]
        assert abs(np.log(p["value"]) - np.log(t)) <= 2 * p["sigma_x"], (n, p, t)
    # the monitor log and the checkpoint hold the accepted iterates
    lines = [json.loads(x) for x in open(tmp_path / "it.jsonl")]
    assert lines[0]["iteration"] == 0 and lines[-1]["iteration"] == res["iterations"]
    assert all(rec["trust_radius"] is not None and rec["trust_radius"] >= 0 for rec in lines)
    assert lines[-1]["trust_radius"] > 0
    ck = read_checkpoint(str(tmp_path / "ck.h5"), 4)
    assert ck["trust_radius"] == lines[-1]["trust_radius"]
    assert np.allclose(ck["x"], res["x"], rtol=1e-10) and "DIP" in ck["state"]
    assert set(post["eigen"]["best_constrained"]) == set(TRUTH)
    obj.destroy()
    obj.system.destroy()


def test_restart_equivalence(twin, tmp_path):
    # converge tightly: two runs that stop at |g| <= 1e-9 may differ by |H^-1 g| ~ 1e-7 (bntr's first
    # step after a restart need not repeat the uninterrupted run's step bit for bit)
    PETSc.Options().setValue("inv_tao_gatol", "1e-12")
    m, obj = make_objective(twin)
    full = Inversion(obj).run()
    obj.destroy()
    obj.system.destroy()
    ck = str(tmp_path / "ck.h5")
    m2, obj2 = make_objective(twin)
    part = Inversion(obj2, checkpoint=ck, stop_after=3).run()
    assert part["iterations"] == 3
    obj2.destroy()
    obj2.system.destroy()
    m3, obj3 = make_objective(twin)  # a fresh process would start here: parameters at their initial values
    resumed = Inversion(obj3, checkpoint=ck).run(resume=True)
    PETSc.Options().delValue("inv_tao_gatol")
    assert np.allclose(resumed["x"], full["x"], rtol=0, atol=1e-8)
    assert abs(resumed["objective"] - full["objective"]) <= 1e-10 * full["objective"]
    assert resumed["iterations"] <= full["iterations"] + 2    # the trust radius is restored, not restarted
    obj3.destroy()
    obj3.system.destroy()


def _first_solve_iterations(obj):
    """Record the Newton iterations of every steady-state solve of ``obj``."""
    calls = []
    solve = obj.steady.solve

    def spy(*args, **kwargs):
        out = solve(*args, **kwargs)
        calls.append(obj.steady.newton_iterations)
        return out
    obj.steady.solve = spy
    return calls


def test_resume_starts_from_the_checkpoints_state(twin, tmp_path, caplog):
    """A resumed run's first steady state starts from the state stored with the checkpoint's iterate
    and converges at once; a checkpoint without a state is resumed from the usual initial guess,
    which needs more Newton iterations, saying so."""
    import h5py
    import logging
    import shutil
    ck = str(tmp_path / "ck.h5")
    _, obj = make_objective(twin)
    Inversion(obj, checkpoint=ck, stop_after=2).run()
    obj.destroy()
    obj.system.destroy()
    runs = {}
    for label in ("with state", "without state"):
        copy = str(tmp_path / f"{label.replace(' ', '_')}.h5")      # each resume continues its own copy
        shutil.copyfile(ck, copy)
        if label == "without state":
            with h5py.File(copy, "a") as h:
                del h["state"]
        _, obj = make_objective(twin)
        calls = _first_solve_iterations(obj)
        with caplog.at_level(logging.INFO, logger="bcp_hpc.inversion.tao_driver"):
            caplog.clear()
            res = Inversion(obj, checkpoint=copy, stop_after=3).run(resume=True)
        runs[label] = (calls[0], res["x"], caplog.text)
        obj.destroy()
        obj.system.destroy()
    warm, cold = runs["with state"], runs["without state"]
    assert "warm start: the steady state stored with the checkpoint's iterate" in warm[2]
    assert "resuming without the checkpoint's state (it has no state of DIP" in cold[2]
    assert warm[0] <= 1 < cold[0], (warm[0], cold[0])
    assert np.allclose(warm[1], cold[1], rtol=0, atol=1e-8)   # the same iterate either way


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    p = tmp_path / "ck.h5"
    p.write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError, match="ck.h5"):
        read_checkpoint(str(p), 4)


def test_observations_on_another_grid(twin):
    g, T, npp, po4, obs = twin
    m = p_model(g, npp, po4, 2.1)
    sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_SELF), T)
    with pytest.raises(InputError, match="another grid"):
        Objective(sysm, [Observation("DIP", obs[:-10], source="dip.mat")])
    # a constant field has no variance to weigh the misfit by: refused, naming file and tracer
    flat = np.where(np.isfinite(obs), 2.0, np.nan)
    with pytest.raises(InputError, match=r"dip\.mat.*DIP.*same value \(2\) in all") as err:
        Objective(sysm, [Observation("DIP", flat, source="dip.mat")])
    assert "variance" in str(err.value)
    # a rank's own boxes: the local length is expected
    with pytest.raises(InputError, match="another grid"):
        Objective(sysm, [Observation("DIP", obs[sysm.loc][:-1], source="dip.mat", local=True)])
    sysm.destroy()


def test_config_errors(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[model]\nsigma2 = 0.1\ncolour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown key 'model.colour'"):
        load_config(str(p))
    p.write_text("[nonsense]\na = 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(str(p))
    p.write_text("[model]\nsigma2 = 0.1\n")
    assert load_config(str(p))["model"]["sigma2"] == 0.1


def test_cli_bad_config_exits_nonzero_without_output(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[parameters.b]\nvalue = 0.9\nunits = 'm'\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "invert", "--config", str(p), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    assert "parameter 'b'" in r.stderr
    assert not out.exists() or not any(f.name.endswith((".h5", "result.json")) for f in out.iterdir())


def test_structured_path_at_sigma2_zero_gives_direct_objective(twin):
    """sigma2 = 0 leaves labile DOP uncoupled; the structured path must still give the direct f, g, H."""
    out = {}
    for path in ("direct", "structured"):
        PETSc.Options().setValue(f"s0{path}_solver", path)
        g, T, npp, po4, obs = twin
        m = p_model(g, npp, po4, 2.1, sigma2=0.0)
        m.parameters.set(**START)
        sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_SELF), T)
        obj = Objective(sysm, [Observation("DIP", obs)], prefix=f"s0{path}_")
        out[path] = obj.evaluate(m.parameters.get_x())
        obj.destroy()
        sysm.destroy()
        PETSc.Options().delValue(f"s0{path}_solver")
    (f0, g0, H0), (f1, g1, H1) = out["direct"], out["structured"]
    assert abs(f1 - f0) <= 1e-9 * abs(f0)
    assert np.abs(g1 - g0).max() <= 1e-6 * np.abs(g0).max()
    assert np.abs(H1 - H0).max() <= 1e-5 * np.abs(H0).max()


@pytest.mark.parametrize("path", ["direct", "structured"])
def test_adjoint_hessian_equals_forward_second_order_sensitivities(twin, path):
    """The adjoint Hessian (one transposed solve) equals the one from the 10 second-order
    sensitivities, on the direct path and on the structured path's transposed GMRES, with a
    labile pool (sigma2 = 0.3) so that every block of the transposed preconditioner is used."""
    g, T, npp, po4, obs = twin
    out = {}
    for mode in ("adjoint", "forward"):
        prefix = f"h{mode}{path}_"
        PETSc.Options().setValue(prefix + "solver", path)
        m = p_model(g, npp, po4, 2.1, sigma2=0.3)
        m.parameters.set(**START)
        sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_SELF), T)
        obj = Objective(sysm, [Observation("DIP", obs)], prefix=prefix, hessian=mode)
        x0 = m.parameters.get_x()
        obj.evaluate(x0, order=1)                 # the gradient call first, as TAO does
        out[mode] = obj.evaluate(x0)
        assert obj.steady.has_adjoint
        obj.destroy()
        sysm.destroy()
        PETSc.Options().delValue(prefix + "solver")
    (fa, ga, Ha), (ff, gf, Hf) = out["adjoint"], out["forward"]
    assert fa == ff and np.array_equal(ga, gf)
    assert np.abs(Ha - Hf).max() <= 1e-8 * np.abs(Hf).max()
    with pytest.raises(InputError):
        Objective(None, [], hessian="newton")


def test_posterior_of_an_unconstrained_direction_stays_finite(twin):
    """A (near-)singular Hessian at an optimum on a bound: the unconstrained parameter is flagged and has no
    interval (None, "unconstrained" in reports, never a figure like 1e+76); the others keep finite ones."""
    g, T, npp, po4, obs = twin
    m = p_model(g, npp, po4, 2.1, sigma2=0.0)
    m.parameters.set(**START)
    x = m.parameters.get_x()
    H = np.diag([1e-300, 1.0, 1.0, 1.0])          # alpha not constrained at all
    post = posterior(m.parameters, x, 1.0, H, 100)
    a = post["parameters"]["alpha"]
    assert a["poorly_constrained"] and a["sigma"] is None and a["lower_1sigma"] is None
    assert np.isfinite(post["parameters"]["beta"]["lower_1sigma"])
    assert not post["parameters"]["beta"]["poorly_constrained"]
    H[0, 0] = 0.0                                  # exactly singular: pseudo-inverse, no exception
    post = posterior(m.parameters, x, 1.0, H, 100)
    assert np.isfinite(post["parameters"]["beta"]["sigma"])


def test_posterior_where_the_objective_curves_down_along_one_parameter(twin):
    """A Hessian with one negative eigenvalue (a flat removal rate near its optimum): H^-1 is no covariance
    there (its diagonal goes negative and read as a sigma of zero).  The parameter carrying that direction is
    unconstrained; the covariance is s2 times the pseudo-inverse over the positive directions.  Expected
    values by hand: the (alpha, beta) block is R diag(-0.01, 1) R^T with R a rotation by 0.1 rad, so its
    pseudo-inverse is v v^T with v = (-sin 0.1, cos 0.1); s2 = 2 f / N = 0.02."""
    g, T, npp, po4, obs = twin
    m = p_model(g, npp, po4, 2.1, sigma2=0.0)
    m.parameters.set(**START)
    names = m.parameters.optimized
    assert names[:2] == ["alpha", "beta"]
    x = m.parameters.get_x()
    t = 0.1
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    H = np.diag([0.0, 0.0, 1.0, 4.0])
    H[:2, :2] = R @ np.diag([-0.01, 1.0]) @ R.T
    assert np.linalg.inv(H)[0, 0] < 0                       # what the plain inverse would report
    post = posterior(m.parameters, x, 1.0, H, 100)
    a, b = post["parameters"]["alpha"], post["parameters"]["beta"]
    assert a["poorly_constrained"] and a["nonpositive_curvature"] and a["sigma"] is None and a["sigma_x"] is None
    assert not b["poorly_constrained"] and not b["nonpositive_curvature"]
    assert b["sigma_x"] == pytest.approx(np.sqrt(0.02) * np.cos(t), rel=1e-12)
    assert post["parameters"][names[2]]["sigma_x"] == pytest.approx(np.sqrt(0.02), rel=1e-12)
    assert post["parameters"][names[3]]["sigma_x"] == pytest.approx(np.sqrt(0.02 / 4.0), rel=1e-12)
    cov = np.array(post["covariance_x"])
    assert cov[0, 1] == pytest.approx(-0.02 * np.sin(t) * np.cos(t), rel=1e-12)
    # a step along the direction of negative curvature is no distance; one along beta's direction is
    rec = {"parameters": {n: {"value": m.parameters[n].from_x(x[k]), "transform": m.parameters[n].transform}
                          for k, n in enumerate(names)}, "posterior": post}

    def moved(dx):
        return {"parameters": {n: {"value": m.parameters[n].from_x(x[k] + dx[k]),
                                   "transform": m.parameters[n].transform} for k, n in enumerate(names)}}
    assert constrained_distance_sigma(rec, moved([np.cos(t), np.sin(t), 0, 0])) == pytest.approx(0, abs=1e-6)
    assert constrained_distance_sigma(rec, moved([-np.sin(t) * 0.03, np.cos(t) * 0.03, 0, 0])) == \
        pytest.approx(0.03 / np.sqrt(0.02), rel=1e-9)
    line = [ln for ln in summary_lines({"converged": True, "iterations": 3, "tao_reason_name": "CONVERGED_GATOL",
                                        "objective": 1.0, "parameters": post["parameters"], "eigen": post["eigen"]},
                                       _NoCycle()) if ln.lstrip().startswith("alpha")][0]
    assert "unconstrained by the data (the objective is flat or curves down along it here)" in line


class _NoCycle:
    summary = None


def test_the_trust_region_subproblem_uses_the_configured_solver(tmp_path):
    """The subproblem's KSP lives under bntr's own prefix (-inv_tao_bnk_): the defaults reach it, and a
    user's option under that prefix replaces them (seen in TAO's own -inv_tao_view report)."""
    import os
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")

    def view(*extra):
        r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "invert", "--world", "tiny", "--out",
                            str(tmp_path / f"run{len(extra)}"), "-inv_tao_view", *extra],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        lines = (r.stdout + r.stderr).splitlines()
        ksp = next(i for i, ln in enumerate(lines) if "KSP Object: (inv_tao_bnk_)" in ln)
        pc = next(i for i, ln in enumerate(lines) if "PC Object: (inv_tao_bnk_)" in ln)
        return lines[ksp + 1].split("type:")[1].strip(), lines[pc + 1].split("type:")[1].strip()

    assert view() == ("stcg", "lmvm")
    assert view("-inv_tao_bnk_pc_type", "none") == ("stcg", "none")


def test_truth_credibility_is_the_mahalanobis_distance_against_chi2():
    """Uncorrelated: d² is the sum of the z²; two correlated parameters: d² = (a² − 2ρab + b²)/(1 − ρ²),
    and χ²'s 95 % quantile with 2 degrees of freedom is −2 ln 0.05 with p = exp(−d²/2); only the
    constrained parameters count."""
    from bcp_hpc.inversion.posterior import truth_credibility
    sd = np.array([0.5, 2.0, 0.1])
    x_true = np.array([1.0, -3.0, 0.2])
    z = np.array([1.5, -0.5, 2.5])
    c = truth_credibility(x_true + z * sd, x_true, np.diag(sd ** 2), [0, 1, 2])
    assert c["parameters"] == 3 and abs(c["mahalanobis_squared"] - (z ** 2).sum()) < 1e-12
    assert c["within"] == (c["mahalanobis_squared"] <= c["quantile"])
    rho, a, b = 0.9, 1.0, -1.0                    # against the correlation: far outside
    cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1e6]])
    c = truth_credibility(np.array([a, b, 40.0]), np.zeros(3), cov, [0, 1])
    d2 = (a * a - 2 * rho * a * b + b * b) / (1 - rho * rho)
    assert abs(c["mahalanobis_squared"] - d2) < 1e-9 * d2
    assert abs(c["quantile"] - (-2 * np.log(0.05))) < 1e-9
    assert abs(c["p_value"] - np.exp(-d2 / 2)) < 1e-12 and not c["within"]
    # each within 2σ on its own (|z| = 1), yet outside the joint 95 % region
    assert c["parameters"] == 2
    c = truth_credibility(np.array([a, a, 40.0]), np.zeros(3), cov, [0, 1])      # along the correlation: inside
    assert c["within"] and abs(c["mahalanobis_squared"] - 2 * a * a / (1 + rho)) < 1e-9
    assert truth_credibility(np.zeros(2), np.zeros(2), np.eye(2), [])["mahalanobis_squared"] is None
    # the likelihood ratio 2 (f(truth) - f(optimum)) / s2, against the same chi2 (2 parameters)
    c = truth_credibility(np.array([a, a, 40.0]), np.zeros(3), cov, [0, 1], f_opt=1.0, f_true=1.5,
                          noise_variance=0.25)
    assert abs(c["likelihood_ratio"] - 4.0) < 1e-12 and abs(c["likelihood_ratio_p_value"] - np.exp(-2.0)) < 1e-12
    assert c["within_likelihood_region"]
    assert truth_credibility(np.zeros(2), np.zeros(2), np.eye(2), [0, 1])["likelihood_ratio"] is None


# ------------------------------------------------------------------ the posterior-scaled stopping test


def _spd(rng, m, eigenvalues):
    Q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    return Q @ np.diag(eigenvalues) @ Q.T


def test_remaining_step_bounds_every_parameters_distance_in_its_own_sigma():
    """For a quadratic objective the optimum is x - H^-1 g; each parameter's distance to it, divided by its
    posterior sigma sqrt(s2 (H^-1)_kk), is at most the remaining step, and equals it for the parameter the
    step points along (one parameter, or a diagonal Hessian with the gradient in one entry)."""
    rng = np.random.default_rng(5)
    s2 = 3e-9
    for _ in range(20):
        m = 6
        H = _spd(rng, m, np.exp(rng.uniform(np.log(1e-6), np.log(10.0), m)))
        g = rng.standard_normal(m) * 1e-6
        d = remaining_step_sigma(g, H, s2)
        step = np.linalg.solve(H, g)
        sigma = np.sqrt(s2 * np.diag(np.linalg.inv(H)))
        assert np.max(np.abs(step) / sigma) <= d * (1 + 1e-9)
        # the Mahalanobis length of the step, computed the long way
        assert d == pytest.approx(np.sqrt(step @ (H / s2) @ step), rel=1e-9)
    H = np.diag([4.0, 9.0])
    assert remaining_step_sigma([0.0, 3e-3], H, 1e-6) == pytest.approx(3e-3 / 9.0 / np.sqrt(1e-6 / 9.0))


def test_flat_directions_count_by_the_decrease_they_promise_and_held_parameters_not_at_all():
    """Hand-computed: the remaining step counts the constrained directions only; flat_decrease is the
    decrease of the quadratic model along the others in units of s2, along a flat one (posterior std above
    5) within a step of at most 5 transformed units, along a downward one the slope's share (|slope| x 5)."""
    s2 = 1e-8
    flat = s2 / (2 * UNCONSTRAINED_SIGMA_X) ** 2          # posterior std 2 x the unconstrained threshold
    H = np.diag([1.0, flat])
    assert remaining_step_sigma([0.0, 1e-3], H, s2) == 0.0
    assert remaining_step_sigma([1e-5, 1e-3], H, s2) == pytest.approx(1e-5 / np.sqrt(s2))
    # slope 2e-10 along the flat one: its Newton step 2 lies inside the box, decrease g^2 / (2 flat)
    assert flat_decrease([0.0, 2e-10], H, s2) == pytest.approx(2e-10 ** 2 / (2 * flat) / s2, rel=1e-12)
    assert flat_decrease([0.0, 2e-10], H, s2) == pytest.approx(0.02, rel=1e-12)
    # slope 1e-3: the step stops at 5, decrease 5e-3 - flat 25 / 2; far from any optimum
    assert flat_decrease([0.0, 1e-3], H, s2) == pytest.approx((5e-3 - 12.5 * flat) / s2, rel=1e-12)
    # a flat direction without slope promises nothing; the constrained one is not counted there
    assert flat_decrease([1e-5, 0.0], H, s2) == 0.0
    # an indefinite direction is no better constrained than a flat one; it counts by its slope over 5 units,
    # not by its curvature's promise
    assert remaining_step_sigma([1e-5, 1e-3], np.diag([1.0, -1.0]), s2) == pytest.approx(1e-5 / np.sqrt(s2))
    assert flat_decrease([1e-5, 0.0], np.diag([1.0, -1.0]), s2) == 0.0
    assert flat_decrease([1e-5, 1e-9], np.diag([1.0, -1.0]), s2) == pytest.approx(5e-9 / s2, rel=1e-12)
    assert flat_decrease([1e-3], np.eye(1), s2, free=[False]) == 0.0
    assert flat_decrease([np.nan, 0.0], np.eye(2), s2) == np.inf
    # a parameter a bound holds takes no part
    assert remaining_step_sigma([1e-5, 1e-3], np.diag([1.0, 1.0]), s2, free=[True, False]) == \
        pytest.approx(1e-5 / np.sqrt(s2))
    assert remaining_step_sigma([1e-3], np.eye(1), s2, free=[False]) == 0.0
    assert remaining_step_sigma([np.nan, 0.0], np.eye(2), s2) == np.inf


def test_distance_between_results_counts_constrained_directions_in_their_sigma():
    """Two results 'a' and 'b': a log parameter and a linear one, correlated; the second eigen-direction
    unconstrained.  Expected values by hand: covariance R diag(4e-4, 100) R^T with R a 45-degree rotation."""
    c = np.sqrt(0.5)
    R = np.array([[c, -c], [c, c]])
    cov = R @ np.diag([4e-4, 10.0 ** 2]) @ R.T            # std 0.02 along (1, 1)/sqrt2, 10 (> 5) along (-1, 1)
    a = {"parameters": {"k": {"value": 2.0, "transform": "log"}, "m": {"value": 1.0, "transform": "none"}},
         "posterior": {"names": ["k", "m"], "covariance_x": cov.tolist()}}
    b = {"parameters": {"k": {"value": 2.0 * np.exp(0.03), "transform": "log"},
                        "m": {"value": 1.0 + 0.01, "transform": "none"}}, "posterior": a["posterior"]}
    # dx = (0.03, 0.01): along (1, 1)/sqrt2 it is 0.04/sqrt2 = 0.028284, i.e. 1.41421 sigma of 0.02;
    # the part along (-1, 1)/sqrt2 lies in the unconstrained direction and does not count
    assert constrained_distance_sigma(a, b) == pytest.approx(0.04 / np.sqrt(2) / 0.02, rel=1e-9)
    assert constrained_distance_sigma(a, a) == 0.0
    moved = {"parameters": {"k": {"value": 2.0 * np.exp(-5.0), "transform": "log"},
                            "m": {"value": 1.0 + 5.0, "transform": "none"}}, "posterior": a["posterior"]}
    assert constrained_distance_sigma(a, moved) == pytest.approx(0.0, abs=1e-9)   # only along the flat one


def test_inversion_stopped_at_a_posterior_step_lies_that_close_to_the_optimum(twin, tmp_path):
    """An inversion stopped by -inv_stop_sigma 0.3 says so, logs the remaining step of every accepted iterate,
    and its parameters lie within that many posterior sigma of the optimum of a tightly converged run."""
    m, obj = make_objective(twin)
    tight = Inversion(obj, tao_defaults={"tao_gatol": "1e-13", "tao_grtol": "0"}).run()
    post = posterior(m.parameters, tight["x"], tight["objective"], tight["hessian"], obj.n_obs)
    n_obs = obj.n_obs
    obj.destroy()
    obj.system.destroy()
    assert tight["remaining_step_sigma"] is None                 # no noise variance given: not measured
    m, obj = make_objective(twin)
    log = tmp_path / "it.jsonl"
    res = Inversion(obj, log_jsonl=str(log), tao_defaults={"stop_sigma": "0.3"},
                    noise_variance=lambda f: noise_variance(f, n_obs)).run()
    obj.destroy()
    obj.system.destroy()
    assert res["converged"] and res["reason_name"].startswith("CONVERGED_STEP_SIGMA"), res["reason_name"]
    assert res["iterations"] < tight["iterations"]
    steps = [rec["remaining_step_sigma"] for rec in map(json.loads, log.read_text().splitlines())]
    assert steps[-1] == pytest.approx(res["remaining_step_sigma"]) and steps[-1] < 0.3 <= min(steps[:-1])
    sigma_x = np.array([post["parameters"][n]["sigma_x"] for n in m.parameters.optimized])
    off = np.abs(np.asarray(res["x"]) - np.asarray(tight["x"])) / sigma_x
    # the quadratic model's prediction, to within its own second-order error
    assert np.max(off) <= 1.1 * res["remaining_step_sigma"], (off, res["remaining_step_sigma"])
    assert np.max(off) > 1e-4                                     # it did stop short of the optimum


def test_stop_sigma_zero_leaves_stopping_to_tao(twin):
    m, obj = make_objective(twin)
    n_obs = obj.n_obs
    res = Inversion(obj, tao_defaults={"stop_sigma": "0"}, noise_variance=lambda f: noise_variance(f, n_obs)).run()
    obj.destroy()
    obj.system.destroy()
    assert res["reason_name"].startswith("CONVERGED_GATOL"), res["reason_name"]
    assert res["remaining_step_sigma"] < 1e-3                    # measured at the end all the same
