import numpy as np
import pytest

from bcp_hpc.errors import ConfigError, InputError
from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.grid.embedded import synthetic_npp, synthetic_phosphate
from bcp_hpc.models import ad2
from bcp_hpc.models.parameters import Parameter, ParameterSet
from bcp_hpc.cycles.phosphorus.model import p_model, p_parameters
from bcp_hpc.models.system import ModelSystem
from bcp_hpc.operators.circulation import synthetic_circulation
from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.solvers.steady import SteadyState
from bcp_hpc.cycles.phosphorus.diagnostics import p_diagnostics

PETSc = import_petsc4py()


@pytest.fixture(scope="module")
def small(small_grid):
    T, _ = synthetic_circulation(small_grid)
    return small_grid, T, synthetic_npp(small_grid, "vgpm"), synthetic_phosphate(small_grid)


def make_system(small, sigma2=0.2, pop_to="DOPs", **params):
    g, T, npp, po4 = small
    m = p_model(g, npp, po4, 2.1, sigma2=sigma2, pop_to=pop_to)
    m.parameters.set(**params)
    dg = DistributedGrid(g, PETSc.COMM_SELF)
    return m, ModelSystem(m, dg, T)


def test_ad2_against_closed_form():
    x = ad2.AD2.variable(np.array([0.7, 1.3]), 0, 2, 2)
    y = ad2.AD2.variable(np.array([2.0, 0.5]), 1, 2, 2)
    f = ad2.exp(x * y) / (y + 1.0) + x ** 3 - ad2.log(y) * ad2.tanh(x)
    xv, yv = x.v, y.v
    # d/dx and d2/dxdy in closed form
    dfdx = yv * np.exp(xv * yv) / (yv + 1) + 3 * xv ** 2 - np.log(yv) * (1 - np.tanh(xv) ** 2)
    d2 = (np.exp(xv * yv) * (1 + xv * yv) / (yv + 1) - yv * np.exp(xv * yv) / (yv + 1) ** 2
          - (1 - np.tanh(xv) ** 2) / yv)
    assert np.allclose(f.g[0], dfdx, rtol=1e-14)
    assert np.allclose(f.h[0, 1], d2, rtol=1e-13)
    assert np.allclose(f.h[1, 0], d2, rtol=1e-13)


@pytest.mark.parametrize("pop_to", ["DOPs", "DIP"])
def test_steady_state_residual_budget_and_mean(small, pop_to):
    g = small[0]
    m, sysm = make_system(small, pop_to=pop_to)
    with SteadyState(sysm) as ss:
        u = ss.solve()
        F = sysm.residual(u)
        # residual at round-off relative to the size of the balancing terms
        J = sysm.jacobian(u)
        Ju = J.createVecLeft()
        J.mult(u, Ju)
        assert F.norm() <= 1e-10 * Ju.norm()
        state = sysm.to_natural(u)
        d = p_diagnostics(m, g, state)
        assert d["p_budget"]["relative_imbalance"] < 1e-9
        assert abs(d["p_budget"]["mean_dip_mmol_m3"] - 2.1) < 1e-9
        # allocation adds up, export positive and below production of POP
        assert np.isclose(d["npp_pop_pg_c_per_yr"] + d["npp_dops_pg_c_per_yr"] + d["npp_dopl_pg_c_per_yr"],
                          d["npp_pg_c_per_yr"], rtol=1e-12)
        assert 0 < d["pop_export_pg_c_per_yr"] < d["npp_pop_pg_c_per_yr"]
        assert state.min() > -1e-12
        for o in (F, Ju):
            o.destroy()
    sysm.destroy()


def test_local_term_derivatives_match_finite_differences(small):
    m, sysm = make_system(small)
    with SteadyState(sysm) as ss:
        u = ss.solve()
        err = sysm.check_derivatives(u)
    sysm.destroy()
    assert err["first"] < 1e-7 and err["second"] < 1e-6


def test_state_sensitivities_against_finite_differences(small):
    m, sysm = make_system(small, sigma2=0.2, alpha=0.08, beta=0.6)
    x0 = m.parameters.get_x()
    with SteadyState(sysm) as ss:
        ss.solve()
        u1, u2 = ss.sensitivities(2)
        S1 = [sysm.to_natural(v) for v in u1]
        S2 = {k: sysm.to_natural(v) for k, v in u2.items()}

    def state_at(x):
        m.parameters.set_x(x)
        with SteadyState(sysm, prefix="fd_") as s2:
            return sysm.to_natural(s2.solve())

    h = 1e-4
    for i in range(len(x0)):
        e = np.zeros_like(x0)
        e[i] = h
        up, um = state_at(x0 + e), state_at(x0 - e)
        fd = (up - um) / (2 * h)
        assert np.abs(fd - S1[i]).max() <= 1e-6 * np.abs(S1[i]).max(), i
        # second order: FD of the first-order sensitivities
        for j in range(i, len(x0)):
            m.parameters.set_x(x0 + e)
            with SteadyState(sysm, prefix="fdp_") as sp_:
                sp_.solve()
                a = sysm.to_natural(sp_.sensitivities(1)[0][j])
            m.parameters.set_x(x0 - e)
            with SteadyState(sysm, prefix="fdm_") as sm_:
                sm_.solve()
                b = sysm.to_natural(sm_.sensitivities(1)[0][j])
            fd2 = (a - b) / (2 * h)
            assert np.abs(fd2 - S2[(i, j)]).max() <= 1e-5 * np.abs(S2[(i, j)]).max(), (i, j)
    m.parameters.set_x(x0)
    sysm.destroy()


def test_bad_npp_and_dip_inputs(small):
    g, T, npp, po4 = small
    bad = npp.copy()
    j, i = np.argwhere(g.mask[:, :, 0])[3]
    bad[j, i] = np.nan
    with pytest.raises(InputError, match="NaN or negative"):
        p_model(g, bad, po4, 2.1)
    bad[j, i] = -5.0
    with pytest.raises(InputError, match="NaN or negative"):
        p_model(g, bad, po4, 2.1)
    dip = po4.copy()
    dip[np.flatnonzero(g.euphotic)[5]] = np.nan
    with pytest.raises(InputError, match="no value in 1 euphotic boxes") as e:
        p_model(g, npp, dip, 2.1)
    assert "fill = true" in str(e.value)             # and it says how to fill them


def test_parameters_bounds_units_and_toml_round_trip():
    ps = p_parameters(0.3)
    with pytest.raises(ConfigError, match="outside its bounds"):
        ps.set(b=50.0)
    with pytest.raises(ConfigError, match="units"):
        Parameter("q", 1.0, "")
    text = ps.to_toml()
    back = ParameterSet.from_toml(text)
    for p in ps:
        q = back[p.name]
        assert (q.value, q.units, q.optimize, q.transform, q.bounds) == (p.value, p.units, p.optimize, p.transform, p.bounds)
    with pytest.raises(ConfigError, match="no units"):
        ParameterSet.from_toml("[a]\nvalue = 1.0\n")
    with pytest.raises(ConfigError, match="unknown key"):
        ParameterSet.from_toml('[a]\nvalue = 1.0\nunits = "1"\ncolour = "red"\n')


@pytest.mark.parametrize("pop_to,particles,large", [("DOPs", True, ""), ("DIP", True, ""), ("DOPs", False, ""),
                                                     ("DOPs", True, "amf"), ("DOPs", True, "metis")])
def test_structured_solver_equals_direct(small, pop_to, particles, large, monkeypatch):
    """The structured path equals the direct one, with POP eliminated column by column (default)
    or kept in the Schur complement (``-<prefix>eliminate_particles 0``), and with what large
    Schur complements get: right-hand sides in blocks, and on several ranks (here: forced) AMF
    ordering with a BLR-compressed factor, on one process a full-rank METIS-ordered factor."""
    sols = {}
    prefix = {False: "st0_", True: f"st1{int(particles)}{large}_"}
    opts = PETSc.Options()
    opts.setValue(prefix[True] + "eliminate_particles", int(particles))
    if large:
        import bcp_hpc.solvers.structured.mumps as structured_module
        from bcp_hpc.solvers import ordering
        monkeypatch.setattr(structured_module, "AMF_ABOVE_UNKNOWNS", 0)     # the small world counts as large
        if large == "metis" and not ordering.available():
            pytest.skip("no METIS library on this machine (BCP_METIS_LIBRARY unset, libmetis.so.5 not found)")
        # the small world's S is below METIS_ABOVE_UNKNOWNS: "auto" would leave it to MUMPS
        opts.setValue(prefix[True] + "schur_ordering", "metis" if large == "metis" else "solver")
    for structured in (False, True):
        m, sysm = make_system(small, sigma2=0.3, pop_to=pop_to, alpha=0.08)
        with SteadyState(sysm, prefix=prefix[structured], structured=structured) as ss:
            u = sysm.to_natural(ss.solve())
            if structured:
                # linear model, true residual verified by the solver: no Newton refinement step
                assert ss.newton_iterations == 1 and ss.solver.verified_residual <= 1e-8
                F = sysm.residual(ss.u)
                assert F.norm() <= 1e-8 * ss.initial_residual_norm
                F.destroy()
            u1, u2 = ss.sensitivities(2)
            sols[structured] = (u, [sysm.to_natural(v) for v in u1], {k: sysm.to_natural(v) for k, v in u2.items()})
            if structured:
                from bcp_hpc.solvers.structured import StructuredSolver
                assert isinstance(ss.solver, StructuredSolver)
                if particles:
                    assert ss.solver.E == [1, 3] and ss.solver.K == [0, 2]   # POP and DOPl eliminated
                else:
                    assert ss.solver.E == [3] and ss.solver.K == [0, 1, 2]   # only DOPl eliminated
                if large:
                    F = ss.solver.schur._mumps()
                    if large == "amf":
                        assert F.getMumpsIcntl(7) == 2 and F.getMumpsIcntl(35) == 2 and F.getMumpsIcntl(36) == 1
                    else:
                        assert ss.solver.schur.ordering == "metis"
                        assert F.getMumpsInfog(7) == 1 and F.getMumpsIcntl(35) == 0    # given order, full rank
                    assert ss.solver.rhs_block == 5
                    assert len(ss.solver.sweeps) == 4       # state, 4 first-, 10 second-order (2 blocks)
                    # the adjoint solve through the BLR factor's transpose equals a direct transposed solve
                    lam = sysm.residual(ss.u)
                    lam.setRandom()
                    mu = ss.adjoint_solve(lam).getArray().copy()
                    J = sysm.jacobian(ss.u)
                    from bcp_hpc.solvers.linear import LinearSolver
                    with LinearSolver(J, "stblrT_") as direct:
                        mu_ref = direct.solve(lam, transpose=True).getArray().copy()
                    assert np.abs(mu - mu_ref).max() <= 1e-8 * np.abs(mu_ref).max()
                    lam.destroy()
                assert max(ss.solver.sweeps) <= 20
        sysm.destroy()

    def rel(a, b):
        return np.abs(a - b).max() / np.abs(b).max()

    if large:
        opts.delValue(prefix[True] + "schur_ordering")
    d, s = sols[False], sols[True]
    assert rel(s[0], d[0]) <= 1e-10
    assert all(rel(a, b) <= 1e-7 for a, b in zip(s[1], d[1]))
    assert all(rel(s[2][k], d[2][k]) <= 1e-7 for k in d[2])
