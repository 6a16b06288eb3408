"""The joint P-C-O model: carbonate chemistry, derivatives, steady state, budgets, exports, inversion."""
import numpy as np
import pytest
from scipy.optimize import brentq

from bcp_hpc.models import ad2, carbonate

# ----------------------------------------------------------------------------- carbonate chemistry


def test_constants_match_published_check_values():
    """Check values of Dickson, Sabine & Christian (2007, SOP guide) at S = 35, t = 25 degC, and the
    Garcia & Gordon check value of the spec (T = 10 degC, S = 35 -> 0.282015 mol m-3)."""
    k = carbonate.constants(np.array([25.0]), np.array([35.0]))
    assert np.log(k.K0 / k.fugacity)[0] == pytest.approx(-3.5617, abs=2e-4)     # Weiss (1974)
    assert np.log(k.KB)[0] == pytest.approx(-19.7964, abs=2e-4)                 # Dickson (1990), total scale
    KS, KF, TS, TF = carbonate.constants_free_scale(np.array([25.0]), np.array([35.0]))
    assert np.log(KS)[0] == pytest.approx(-2.30, abs=0.01)                      # Dickson (1990a)
    assert 0.99 < k.fugacity[0] < 1.0
    assert carbonate.o2_saturation(10.0, 35.0) == pytest.approx(0.282015, abs=5e-7)


def test_hydrogen_ion_solves_the_alkalinity_equation():
    """The safeguarded Newton root equals an independent bracketing root (Brent) of the same equation."""
    rng = np.random.default_rng(1)
    t = rng.uniform(-1.5, 29.0, 40)
    s = rng.uniform(32.0, 37.0, 40)
    k = carbonate.constants(t, s, rng.uniform(0, 2, 40), rng.uniform(0, 60, 40), 18.07)
    dic = rng.uniform(1850, 2250, 40) * 1e-6
    alk = dic + rng.uniform(80, 350, 40) * 1e-6
    H = carbonate.solve_hydrogen(dic, alk, k)
    for i in range(40):
        ki = carbonate.CarbonateConstants(**{f: getattr(k, f)[i] for f in k.__dataclass_fields__})
        ref = brentq(lambda h: carbonate.alkalinity_residual(h, dic[i], alk[i], ki), 1e-11, 1e-5, xtol=1e-22, rtol=1e-14)
        assert H[i] == pytest.approx(ref, rel=1e-10)
    ph = -np.log10(H)
    assert np.all((ph > 7.2) & (ph < 8.8))


def test_co2_star_derivatives_are_exact():
    """AD first and second derivatives of [CO2*](DIC, ALK) (two Newton steps on the implicit H+)
    against central differences of the float function."""
    t = np.array([2.0, 15.0, 28.0])
    s = np.array([34.0, 35.0, 36.0])
    k = carbonate.constants(t, s, 0.5, 10.0, 18.07)
    dic0 = np.array([2150.0, 2050.0, 1950.0])
    alk0 = np.array([2300.0, 2330.0, 2380.0])
    dic = ad2.AD2.variable(dic0, 0, 2, 3)
    alk = ad2.AD2.variable(alk0, 1, 2, 3)
    c = carbonate.co2_star(dic, alk, k)
    assert np.allclose(c.v, carbonate.co2_star(dic0, alk0, k), rtol=1e-13)
    h = 1e-2

    def f(d, a):
        return carbonate.co2_star(dic0 + d, alk0 + a, k)
    g_fd = [(f(h, 0) - f(-h, 0)) / (2 * h), (f(0, h) - f(0, -h)) / (2 * h)]
    for i in range(2):
        assert np.allclose(c.g[i], g_fd[i], rtol=1e-7)
    hh = 1.0
    d2 = [[(f(hh, 0) - 2 * f(0, 0) + f(-hh, 0)) / hh ** 2,
           (f(hh, hh) - f(hh, -hh) - f(-hh, hh) + f(-hh, -hh)) / (4 * hh ** 2)],
          [None, (f(0, hh) - 2 * f(0, 0) + f(0, -hh)) / hh ** 2]]
    assert np.allclose(c.h[0, 0], d2[0][0], rtol=1e-4)
    assert np.allclose(c.h[0, 1], d2[0][1], rtol=1e-4)
    assert np.allclose(c.h[1, 0], c.h[0, 1], rtol=1e-12)
    assert np.allclose(c.h[1, 1], d2[1][1], rtol=1e-4)
    # physics: more DIC -> more CO2*, more ALK -> less
    assert np.all(c.g[0] > 0) and np.all(c.g[1] < 0)


# ----------------------------------------------------------------------------- the model on a tiny world


@pytest.fixture(scope="module")
def joint():
    from bcp_hpc.grid.distributed import DistributedGrid
    from bcp_hpc.cycles.pco.model import joint_model
    from bcp_hpc.models.system import ModelSystem
    from bcp_hpc.operators.world import load_world
    from bcp_hpc.petsc_env import import_petsc4py
    from bcp_hpc.solvers.steady import SteadyState
    PETSc = import_petsc4py()
    world = load_world("tiny")
    dgrid = DistributedGrid(world.grid, PETSc.COMM_WORLD)
    model = joint_model(world, world.npp(), 2.1)
    system = ModelSystem(model, dgrid, world.T)
    steady = SteadyState(system, prefix="jt_", structured=False)
    steady.solve()
    state = system.to_natural(steady.u)
    yield {"world": world, "dgrid": dgrid, "model": model, "system": system, "steady": steady, "state": state}
    steady.destroy()
    system.destroy()


def test_local_derivatives_against_finite_differences(joint):
    err = joint["system"].check_derivatives(joint["steady"].u)
    assert err["first"] < 1e-6 and err["second"] < 1e-5, err


def test_steady_state_residual_and_nonlinearity(joint):
    st = joint["steady"]
    assert not joint["system"].is_linear(st.u)           # gas exchange and the O2 switch
    assert st.residual_norm <= 1e-11 * st.initial_residual_norm
    names = joint["model"].tracer_names
    X = joint["state"]
    for nm in ("DIC", "ALK"):
        assert 1500 < X[names.index(nm)].min() and X[names.index(nm)].max() < 6000
    assert np.all(np.isfinite(X))


def test_carbon_sources_close_boxwise_and_budgets_close(joint):
    """Organic and inorganic transfers cancel box by box (sigma_C + phi = 1, labile = N_sat - P_C), so the
    carbon sources sum to the air-sea plus virtual fluxes; at steady state their global sum vanishes
    (transport and sinking conserve mass); the P budget closes likewise."""
    from bcp_hpc.cycles.pco.diagnostics import carbon_budget, joint_diagnostics
    system, model, X = joint["system"], joint["model"], joint["state"]
    grid = joint["world"].grid
    names = model.tracer_names
    n = system.nloc
    c = {t: ad2.AD2.const(system.local_state(joint["steady"].u)[a], 0, n) for a, t in enumerate(names)}
    p = {q.name: q.value for q in model.parameters}
    s = model.local_terms(c, p, system.local_fields)
    total = sum(s[t].v for t in ("DIC", "POC", "DOCs", "PIC", "DOCl", "DOCr"))
    budget = carbon_budget(grid, model.rates(X), X[names.index("DIC")])
    loc = system.loc
    f = system.local_fields
    surf = np.flatnonzero(f["is_surface"] > 0)
    kc = carbonate.constants(f["temp_surface"][surf], f["salt_surface"][surf], f["po4_surface"][surf],
                             f["si_surface"][surf], f["pressure_dbar"][surf])
    jg = np.zeros(n)
    jg[surf] = (kc.K0 * p["pco2_atm"] - carbonate.co2_star(X[names.index("DIC")][loc][surf],
                                                            X[names.index("ALK")][loc][surf], kc)) \
        * f["k_co2"][surf] * p["rho"] / 1000.0
    expect = jg - f["pme"] * model.variant["s_dic"]
    assert np.allclose(total, expect, rtol=1e-10, atol=1e-12 * np.abs(expect).max())
    assert budget["relative_imbalance"] < 1e-8, budget
    # P: total uptake = total remineralisation + restoring (POP -> DIP in the joint model)
    V = grid.box_volume
    sP = sum(np.sum(s[t].v * V[loc]) for t in ("DIP", "POP", "DOPs"))
    gross = np.sum(np.abs(s["POP"].v) * V[loc])
    assert abs(sP) < 1e-10 * gross
    diag = joint_diagnostics(model, grid, X)
    assert diag["toc_export_pg_c_per_yr"] == pytest.approx(
        diag["poc_export_pg_c_per_yr"] + diag["docs_export_pg_c_per_yr"] + diag["docl_export_pg_c_per_yr"])
    assert diag["npp_satellite_pg_c_per_yr"] == pytest.approx(52.0, rel=1e-6)   # the synthetic VGPM's total


def test_model_system_drops_the_whole_fields_and_diagnostics_rebuild_them(joint):
    """The whole natural-order fields (n-vectors on every rank) are dropped once a model system holds
    its rows; the diagnostics rebuild the same arrays and give the same totals."""
    from bcp_hpc.cycles.pco.diagnostics import joint_diagnostics
    from bcp_hpc.cycles.pco.model import joint_model
    from bcp_hpc.models.base import Model, RebuiltFields
    from bcp_hpc.models.system import ModelSystem
    world, X = joint["world"], joint["state"]
    model = joint_model(world, world.npp(), 2.1)
    whole = {k: np.array(v, copy=True) for k, v in model.fields.items()}
    n = world.grid.nwet
    assert sum(v.nbytes for v in whole.values() if v.shape == (n,)) == 21 * 8 * n
    before = joint_diagnostics(model, world.grid, X)
    system = ModelSystem(model, joint["dgrid"], world.T)
    assert isinstance(model.fields, RebuiltFields) and not model.fields.held
    for k, v in whole.items():
        if v.shape == (n,):
            assert np.array_equal(system.local_fields[k], v[system.loc])
    after = joint_diagnostics(model, world.grid, X)
    assert model.fields.held
    assert set(model.fields) == set(whole)
    assert all(np.array_equal(model.fields[k], v) for k, v in whole.items())
    for key in ("toc_export_pg_c_per_yr", "npp_model_pg_c_per_yr", "npp_satellite_pg_c_per_yr"):
        assert after[key] == before[key]
    system.destroy()
    # a model declared without a way to rebuild its fields keeps them
    plain = Model("plain", model.tracers, model.parameters.copy(), sinking=model.sinking, fields=dict(whole),
                  processes=model.processes)
    plain.release_fields()
    assert isinstance(plain.fields, dict) and len(plain.fields) == len(whole)


def test_released_linearisation_is_built_again_the_same(joint):
    """A waiting system frees its Jacobian, assembly plan and cached evaluations; the next linearisation
    is the same matrix."""
    from bcp_hpc.cycles.pco.model import joint_model
    from bcp_hpc.models.system import ModelSystem
    world = joint["world"]
    system = ModelSystem(joint_model(world, world.npp(), 2.1), joint["dgrid"], world.T)
    u = system.vec_from_natural(list(joint["state"]))
    before = [a.copy() for a in system.linearise(u).matrix.getValuesCSR()]
    system.release_linearisation()
    assert system._J is None and system._assembly is None and not system._cache
    after = system.linearise(u).matrix.getValuesCSR()
    for a, b in zip(before, after):
        assert np.array_equal(a, b)
    u.destroy()
    system.destroy()


def test_doc_export_adjoint_equals_forward(joint):
    """Spec §6.3: the adjoint export (one transposed solve) equals the forward formula; 0 <= xi <= 1."""
    from bcp_hpc.cycles.pco.diagnostics import adjoint_export_probabilities, joint_diagnostics
    xi = adjoint_export_probabilities(joint["model"], joint["system"], root=None)
    d = joint_diagnostics(joint["model"], joint["world"].grid, joint["state"], export_probabilities=xi)
    for key in ("docs", "docl"):
        assert d[f"{key}_export_adjoint_pg_c_per_yr"] == pytest.approx(d[f"{key}_export_pg_c_per_yr"], rel=1e-8)
        lo, hi = d[f"{key}_export_probability_range"]
        assert lo >= -1e-10 and hi <= 1 + 1e-10


def test_state_sensitivities_against_finite_differences(joint):
    """First-order state sensitivities (the nonlinear model's F_u at the solution) against central
    differences of the Newton steady state, for P, C and O parameters."""
    system, steady = joint["system"], joint["steady"]
    ps = joint["model"].parameters
    x0 = ps.get_x()
    u1 = steady.first_order()
    names = ps.optimized
    for pname in ("alpha", "sigC", "d", "rO2C", "bP_T"):
        k = names.index(pname)
        h = 1e-4
        sols = []
        for sign in (1, -1):
            x = x0.copy()
            x[k] += sign * h
            ps.set_x(x)
            from bcp_hpc.solvers.steady import SteadyState
            with SteadyState(system, prefix="jtfd_", structured=False) as ss:
                ss.solve(steady.u)
                sols.append(system.to_natural(ss.u))
        ps.set_x(x0)
        fd = (sols[0] - sols[1]) / (2 * h)
        ad = system.to_natural(u1[k])
        for a in range(system.nt):
            # truncation O(h^2) ~ 1e-8 relative; round-off of the Newton states ~ 1e-12 |X| / h
            floor = 1e-11 * np.abs(joint["state"][a]).max() / h
            assert np.abs(fd[a] - ad[a]).max() <= 1e-5 * np.abs(ad[a]).max() + floor, \
                (pname, joint["model"].tracer_names[a])
    for v in u1:
        v.destroy()


@pytest.fixture(scope="module")
def joint_objective(joint):
    from bcp_hpc.inversion.objective import Objective, Observation
    from bcp_hpc.experiments.twin import synthetic_observations
    X, names, V = joint["state"], joint["model"].tracer_names, joint["world"].grid.box_volume
    obs = []
    for k, nm in enumerate(("DIP", "DIC", "ALK", "O2")):
        field = X[names.index(nm)]
        y, _ = synthetic_observations(field, V, 0.02 * field.std(), 0.6, k)
        obs.append(Observation(nm, y))
    objs = {mode: Objective(joint["system"], obs, prefix="jto_", hessian=mode) for mode in ("adjoint", "forward")}
    yield objs
    for o in objs.values():
        o.destroy()


def test_gradient_and_hessian_of_the_joint_objective(joint, joint_objective):
    """Gradient against central differences of f (all 21 parameters); the adjoint Hessian equals the
    forward second-order one and central differences of the gradient."""
    ps = joint["model"].parameters
    x_saved = ps.get_x().copy()
    x0 = x_saved - 0.02
    obj = joint_objective["adjoint"]
    f0, g, H = obj.evaluate(x0, 2)
    _, g_fwd, H_fwd = joint_objective["forward"].evaluate(x0, 2)
    assert np.allclose(g, g_fwd, rtol=1e-8, atol=1e-12 * np.abs(g).max())
    assert np.allclose(H, H_fwd, rtol=1e-6, atol=1e-8 * np.abs(H).max())
    h = 1e-5
    for k in range(x0.size):
        xp, xm = x0.copy(), x0.copy()
        xp[k] += h
        xm[k] -= h
        fd = (obj.evaluate(xp, 0)[0] - obj.evaluate(xm, 0)[0]) / (2 * h)
        assert fd == pytest.approx(g[k], rel=1e-4, abs=1e-6 * np.abs(g).max()), ps.optimized[k]
    for k in (0, 5, 12, 20):
        xp, xm = x0.copy(), x0.copy()
        xp[k] += h
        xm[k] -= h
        col = (obj.evaluate(xp, 1)[1] - obj.evaluate(xm, 1)[1]) / (2 * h)
        assert np.allclose(col, H[:, k], rtol=1e-3, atol=1e-5 * np.abs(H).max()), ps.optimized[k]
    ps.set_x(x_saved)         # the module's fixture state belongs to these parameters


def test_bad_joint_configuration_is_a_clear_error(tmp_path):
    import subprocess
    import sys
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[model]\ncycle = "PCO"\n[joint]\nobserved = ["DIP", "NO3"]\n[world]\nsource = "tiny"\n')
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "invert", "--config", str(cfg),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode != 0 and "NO3" in r.stderr
    cfg.write_text('[model]\ncycle = "PC"\n')
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "invert", "--config", str(cfg),
                        "--out", str(tmp_path / "o2")], capture_output=True, text=True)
    assert r.returncode != 0 and "cycle" in r.stderr


def test_tracer_graph_components_are_in_dependency_order(joint):
    from bcp_hpc.solvers.blocktri import strongly_connected_components
    present = joint["system"].coupling(joint["steady"].u)
    comps = strongly_connected_components(present)
    names = joint["model"].tracer_names
    assert [names[a] for a in comps[0]] == ["DIP", "POP", "DOPs"] and len(comps) == 9
    where = {a: k for k, c in enumerate(comps) for a in c}
    for a in range(len(names)):
        for b in range(len(names)):
            if present[a, b]:
                assert where[b] <= where[a], (names[a], names[b])
    # a cycle a -> b -> c -> a is one component; d depending on it comes after
    g = np.zeros((4, 4), bool)
    g[0, 1] = g[1, 2] = g[2, 0] = g[3, 0] = True
    assert strongly_connected_components(g) == [[0, 1, 2], [3]]


@pytest.mark.parametrize("transpose", [False, True])
def test_block_triangular_solves_equal_the_monolithic_lu(joint, transpose):
    """Forward and transposed solves with the block-triangular factorization equal one LU of F_u."""
    from bcp_hpc.solvers.blocktri import BlockTriangularSolver
    from bcp_hpc.solvers.linear import LinearSolver
    system = joint["system"]
    lin = system.linearise(joint["steady"].u)
    J = lin.matrix
    rng = np.random.default_rng(2)
    b = J.createVecLeft()
    b.getArray()[:] = rng.standard_normal(b.getLocalSize())
    bt = BlockTriangularSolver(system, lin, "jbt_")
    lu = LinearSolver(J, "jmono_")
    lu.setup()
    x1 = bt.solve(b, transpose=transpose)
    x2 = lu.solve(b, transpose=transpose)

    def residual(x):
        r = J.createVecLeft()
        (J.multTranspose if transpose else J.mult)(x, r)
        r.axpy(-1.0, b)
        out = r.norm()
        r.destroy()
        return out
    # the P block is near-singular (kappa_g = 1/Myr): a random right-hand side gives |x| ~ 1e16 and
    # the LU's own residual ~1e-8 |b| in the transposed case; the block solve must be as good
    assert residual(x1) <= 10 * residual(x2) + 1e-12 * b.norm()
    x1.axpy(-1.0, x2)
    assert x1.norm() <= 1e-10 * x2.norm()
    for o in (b, x2):
        o.destroy()
    bt.destroy()
    lu.destroy()


@pytest.mark.slow
def test_joint_products_experiment(tmp_path):
    """`bcp-hpc experiment joint-products` with two NPP products: one inversion each against the same
    observations, totals as mean +- sample std (recomputed here), the cross experiment, results file."""
    import json
    import subprocess
    import sys
    cfg = tmp_path / "p.toml"
    cfg.write_text('[world]\nsource = "tiny"\n[joint]\nnpp_products = ["vgpm", "cafe"]\n')
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "experiment", "joint-products", "--config",
                        str(cfg), "--out", str(tmp_path / "o"), "--json", str(tmp_path / "p.json")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["products"] == ["vgpm", "cafe"]
    for k, st in res["mean_std"].items():
        vals = np.array([res["runs"][p][k] for p in res["products"]])
        assert st["mean"] == pytest.approx(vals.mean(), rel=1e-12)
        assert st["std"] == pytest.approx(vals.std(ddof=1), rel=1e-12, abs=1e-15)
    # the satellite products differ by construction (52 and 58.5 Pg C/yr), the fitted models' exports less
    assert res["runs"]["cafe"]["npp_satellite_pg_c_per_yr"] == pytest.approx(58.5, rel=1e-6)
    for p in res["products"]:
        assert all(v > 0.99 for v in res["runs"][p]["fit_r2"].values())
    x = res["cross_experiment"]
    assert x["forcing"] == "cafe" and x["parameters_from"] == "vgpm" and np.isfinite(x["docl_export_pg_c_per_yr"])
    assert (tmp_path / "o" / "joint_products.json").exists()
    # each product says where the twin's truth (forced by vgpm) lies against its own posterior
    for p in res["products"]:
        cred = res["runs"][p]["truth_credibility"]
        assert cred["parameters"] >= 15 and cred["likelihood_ratio"] is not None
        assert f"{p}: the twin's truth lies" in r.stdout


def test_chunked_second_order_evaluation_equals_one_chunk(joint):
    """Evaluating the local terms in chunks of boxes (bounded memory) gives the same values, first and
    second derivatives as one chunk over all boxes."""
    system = joint["system"]
    c = system.local_state(joint["steady"].u)
    m = system.nt + system.npar
    one = system._evaluate_chunked(c, m, True)            # 1,179 boxes fit one 16 MB chunk
    system.CHUNK_BYTES = 8 * m * m * 256                   # now 5 chunks of 256 boxes
    try:
        many = system._evaluate_chunked(c, m, True)
    finally:
        del system.CHUNK_BYTES
    def close(x, y):      # the H+ iteration stops per chunk: last-digit differences only
        return np.allclose(x, y, rtol=1e-12, atol=1e-14 * np.abs(y).max())
    for a, b in zip(one, many):
        for key in a:
            assert close(a[key].v, b[key].v) and close(a[key].g, b[key].g), key
            assert set(a[key].h.d) == set(b[key].h.d)
            for ij in a[key].h.d:
                assert close(a[key].h[ij], b[key].h[ij]), (key, ij)
    assert any(len(v.h.d) < m * m / 4 for v in one[0].values())   # the sparse storage pays off


def test_block_triangular_multi_rhs_equals_single_solves(joint):
    from bcp_hpc.solvers.blocktri import BlockTriangularSolver
    system = joint["system"]
    lin = system.linearise(joint["steady"].u)
    J = lin.matrix
    rng = np.random.default_rng(4)
    bs = []
    for _ in range(3):
        b = J.createVecLeft()
        b.getArray()[:] = rng.standard_normal(b.getLocalSize()) * np.repeat(
            [2.0, 0.01, 0.1, 2000, 1, 1, 0.1, 2000, 0.1, 10, 200], system.nloc)
        bs.append(b)
    bt = BlockTriangularSolver(system, lin, "jbtm_")
    many = bt.solve_many(bs)
    for b, x in zip(bs, many):
        y = bt.solve(b)
        y.axpy(-1.0, x)
        assert y.norm() <= 1e-12 * x.norm()
        for o in (b, x, y):
            o.destroy()
    bt.destroy()


@pytest.mark.parametrize("path", ["iterative", "ooc"])
def test_multi_component_models_use_the_block_triangular_path(joint, path):
    """The iterative and structured paths are built for the P model's single cycle: a model with
    several components gets the block-triangular solver on any path, with the same steady state."""
    from bcp_hpc.petsc_env import import_petsc4py
    from bcp_hpc.solvers.blocktri import BlockTriangularSolver
    from bcp_hpc.solvers.steady import SteadyState
    from bcp_hpc.cycles.pco.model import joint_parameters
    joint["model"].parameters.set(**{p.name: p.value for p in joint_parameters()})   # the fixture's state
    opts = import_petsc4py().Options()
    opts.setValue(f"jp{path}_solver", path)
    try:
        with SteadyState(joint["system"], prefix=f"jp{path}_") as ss:
            ss.solve(joint["steady"].u)
            assert isinstance(ss.solver, BlockTriangularSolver)
            X = joint["system"].to_natural(ss.u)
    finally:
        opts.delValue(f"jp{path}_solver")
    # each tracer against its own scale: O2 in boxes at its respiration switch is the worst conditioned
    # (the residual test, 1e-12 of the initial residual, leaves about 1e-8 of O2's scale there)
    scale = np.abs(joint["state"]).max(axis=1, keepdims=True)
    assert (np.abs(X - joint["state"]) / scale).max() <= 5e-8
    assert np.abs(X - joint["state"]).max() <= 5e-9 * np.abs(joint["state"]).max()


def test_long_solves_report_newton_factorizations_and_sensitivities(joint, caplog, monkeypatch):
    """A solve that runs long (here: every solve, PROGRESS_AFTER_S = 0) prints a line per Newton
    iteration with ||F||, per factored component and per sensitivity block, so a user sees it move."""
    import logging
    from bcp_hpc import log as bl
    from bcp_hpc.solvers.steady import SteadyState
    monkeypatch.setattr(bl, "PROGRESS_AFTER_S", 0.0)
    system = joint["system"]
    with caplog.at_level(logging.INFO, logger="bcp_hpc"):
        with SteadyState(system, prefix="jprog_", structured=False) as ss:
            ss.solve()
            ss.first_order()
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert "'jprog_': [DIP, POP, DOPs] iteration 1, ||F_k|| = " in text, text
    assert "'jprog_': [O2] iteration 2, ||F_k|| = " in text, text
    assert "block-triangular: factored component 1/" in text and "[DIP" in text, text
    assert f"{system.npar} first-order sensitivities in" in text, text


def test_newton_by_components_equals_newton_on_the_whole_system(joint):
    """Newton component by component (the default on a block-triangular model) reaches the state of
    Newton on the whole system, leaves factors that give the same sensitivities, and solves each
    linear component with one factorization (a solve and a refinement step).  Both stop at
    ||F|| <= 1e-12 ||F(u0)||; O2's slow ventilation turns that into up to ~3e-9 of its largest value,
    so the states agree to 1e-8."""
    from bcp_hpc.petsc_env import import_petsc4py
    from bcp_hpc.solvers.steady import SteadyState
    from bcp_hpc.cycles.pco.model import joint_parameters
    system = joint["system"]
    joint["model"].parameters.set(**{p.name: p.value for p in joint_parameters()})   # the fixture's state
    opts = import_petsc4py().Options()
    opts.setValue("jglobal_newton", "global")
    try:
        with SteadyState(system, prefix="jglobal_") as whole, SteadyState(system, prefix="jcomp_") as comp:
            whole.solve()
            comp.solve()
            assert whole.component_iterations == {}
            its = comp.component_iterations
            assert list(its) == ["DIP, POP, DOPs", "POC", "DOCs", "PIC", "DOCl", "DOCr", "ALK", "DIC", "O2"], its
            assert all(its[c] <= 2 for c in ("DIP, POP, DOPs", "POC", "DOCs", "PIC", "DOCl", "DOCr", "ALK")), its
            assert its["DIC"] > 2 and its["O2"] > 2, its          # the nonlinear ones iterate
            Xw, Xc = system.to_natural(whole.u), system.to_natural(comp.u)
            for a in range(system.nt):
                assert np.abs(Xc[a] - Xw[a]).max() <= 1e-8 * max(np.abs(Xw[a]).max(), 1e-30), system.model.tracer_names[a]
            assert np.abs(Xc - joint["state"]).max() <= 1e-9 * np.abs(joint["state"]).max()
            Sw, Sc = whole.first_order(), comp.first_order()
            for i, (a, b) in enumerate(zip(Sw, Sc)):
                d = b.copy()
                d.axpy(-1.0, a)
                assert d.norm() <= 1e-7 * a.norm(), (system.param_names[i], d.norm() / a.norm())
                d.destroy()
            for v in Sw + Sc:
                v.destroy()
    finally:
        opts.delValue("jglobal_newton")


def test_only_the_current_states_evaluations_are_kept(joint):
    """The cached local-term evaluations belong to one state and parameter set: a new state drops the
    old ones (their second derivatives are m^2 n per term), and the full evaluation replaces the
    lower orders of its state."""
    system = joint["system"]
    u = joint["steady"].u
    system.forget_evaluations()
    system.evaluate(u, full="jacobian")
    system.evaluate(u, full=False)
    assert sorted(str(k[-1]) for k in system._cache) == ["False", "jacobian"]
    s_full, _ = system.evaluate(u, full=True)
    assert [k[-1] for k in system._cache] == [True]
    assert system.evaluate(u, full=True)[0] is s_full          # reused, not recomputed
    w = u.copy()
    w.scale(1.001)
    system.evaluate(w, full="jacobian")
    assert [k[-1] for k in system._cache] == ["jacobian"]
    assert system._key(system.local_state(w), "jacobian") in system._cache
    w.destroy()
    system.forget_evaluations()


def test_released_factorization_keeps_the_state_and_solves_again(joint):
    """``release_factorization`` frees the factors of a state kept only as a warm start; a later solve
    from it refactors, and its sensitivities equal those of a solver that never released."""
    from bcp_hpc.solvers.steady import SteadyState
    system = joint["system"]
    with SteadyState(system, prefix="jrel_") as ss:
        ss.solve(joint["steady"].u)
        before = system.to_natural(ss.u)
        ss.release_factorization()
        assert ss.solver is None and not ss.has_adjoint
        assert np.array_equal(system.to_natural(ss.u), before)
        ss.solve(ss.u)
        S = ss.first_order()
        R = joint["steady"].first_order()
        for a, b in zip(S, R):
            d = a.copy()
            d.axpy(-1.0, b)
            assert d.norm() <= 1e-8 * b.norm()
            d.destroy()
        for v in S + R:
            v.destroy()


def test_newton_by_components_rebuilds_when_the_coupling_pattern_changes(joint, monkeypatch, caplog):
    """A coupling pattern that changes during the sweep (a derivative that was zero at the first
    guess) rebuilds the components and still reaches the steady state."""
    import dataclasses
    import logging
    from bcp_hpc.solvers.steady import SteadyState
    from bcp_hpc.cycles.pco.model import joint_parameters
    system = joint["system"]
    joint["model"].parameters.set(**{p.name: p.value for p in joint_parameters()})
    real = system.linearise
    calls = {"n": 0}

    def linearise(u):
        calls["n"] += 1
        lin = real(u)
        return dataclasses.replace(lin, pattern_changed=True) if calls["n"] == 4 else lin
    monkeypatch.setattr(system, "linearise", linearise)
    with caplog.at_level(logging.INFO, logger="bcp_hpc"), SteadyState(system, prefix="jpat_") as ss:
        ss.solve()
        X = system.to_natural(ss.u)
    assert "coupling pattern changed" in caplog.text
    assert np.abs(X - joint["state"]).max() <= 1e-9 * np.abs(joint["state"]).max()
