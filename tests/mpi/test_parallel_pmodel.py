"""P model and inversion on N ranks equal the serial (COMM_SELF) computation."""
import numpy as np
import pytest

from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.grid.embedded import embedded_grid, synthetic_npp, synthetic_phosphate
from bcp_hpc.inversion.objective import Objective, Observation
from bcp_hpc.inversion.tao_driver import Inversion
from bcp_hpc.cycles.phosphorus.model import p_model
from bcp_hpc.models.system import ModelSystem
from bcp_hpc.operators.circulation import synthetic_circulation
from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.solvers.steady import SteadyState

from .test_parallel_operators import all_ranks

PETSc = import_petsc4py()


@pytest.fixture(scope="module")
def small():
    g = embedded_grid(nlat=15, nlon=30, nz=8)
    T, _ = synthetic_circulation(g)
    return g, T, synthetic_npp(g, "vgpm"), synthetic_phosphate(g)


def solve_all(small, comm, sigma2=0.2):
    g, T, npp, po4 = small
    m = p_model(g, npp, po4, 2.1, sigma2=sigma2)
    m.parameters.set(alpha=0.08, beta=0.6)
    sysm = ModelSystem(m, DistributedGrid(g, comm), T)
    with SteadyState(sysm, prefix="par_" if comm.getSize() > 1 else "ser_") as ss:
        u = sysm.to_natural(ss.solve())
        u1, u2 = ss.sensitivities(2)
        s1 = [sysm.to_natural(v) for v in u1]
        s2 = {k: sysm.to_natural(v) for k, v in u2.items()}
    sysm.destroy()
    return u, s1, s2


def rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def test_solution_and_sensitivities_match_serial(small):
    ref = solve_all(small, PETSc.COMM_SELF)
    par = solve_all(small, PETSc.COMM_WORLD)
    ok = rel(par[0], ref[0]) <= 1e-10
    ok &= all(rel(a, b) <= 1e-10 for a, b in zip(par[1], ref[1]))
    ok &= all(rel(par[2][k], ref[2][k]) <= 1e-10 for k in ref[2])
    assert all_ranks(ok)


def test_inversion_iterates_match_serial(small):
    g, T, npp, po4 = small
    rng = np.random.default_rng(5)
    u, _, _ = solve_all(small, PETSc.COMM_SELF, sigma2=0.0)
    obs = u[0] + 0.02 * rng.standard_normal(g.nwet)
    obs[rng.random(g.nwet) > 0.6] = np.nan

    def invert(comm):
        m = p_model(g, npp, po4, 2.1, sigma2=0.0)
        sysm = ModelSystem(m, DistributedGrid(g, comm), T)
        obj = Objective(sysm, [Observation("DIP", obs)], prefix="i%d_" % comm.getSize())
        inv = Inversion(obj, prefix="inv%d_" % comm.getSize())
        res = inv.run()
        hist = np.array([h["x"] for h in inv.history])
        obj.destroy()
        sysm.destroy()
        return res, hist

    r1, h1 = invert(PETSc.COMM_SELF)
    r2, h2 = invert(PETSc.COMM_WORLD)
    ok = r1["iterations"] == r2["iterations"] and h1.shape == h2.shape
    ok = ok and np.abs(h1 - h2).max() <= 1e-7 and np.abs(r1["x"] - r2["x"]).max() <= 1e-8
    assert all_ranks(ok)


def test_superlu_dist_path_matches_mumps(small):
    g, T, npp, po4 = small
    opts = PETSc.Options()
    opts.setValue("sld_pc_factor_mat_solver_type", "superlu_dist")
    sols = []
    for prefix in ("mum_", "sld_"):
        m = p_model(g, npp, po4, 2.1, sigma2=0.2)
        sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_WORLD), T)
        with SteadyState(sysm, prefix=prefix) as ss:
            sols.append(sysm.to_natural(ss.solve()))
            pkg = ss.solver.ksp.getPC().getFactorSolverType()
        sysm.destroy()
        assert pkg == ("superlu_dist" if prefix == "sld_" else "mumps")
    assert all_ranks(rel(sols[1], sols[0]) <= 1e-10)


def test_resume_on_another_rank_count(small, tmp_path_factory):
    """A run interrupted on 1 rank (COMM_SELF) resumes on all ranks and reaches the same optimum."""
    import os
    g, T, npp, po4 = small
    mpi = PETSc.COMM_WORLD.tompi4py()
    d = mpi.bcast(str(tmp_path_factory.mktemp("ck")) if mpi.rank == 0 else None)
    ck = os.path.join(d, "ck.h5")
    rng = np.random.default_rng(7)
    u, _, _ = solve_all(small, PETSc.COMM_SELF, sigma2=0.0)
    obs = u[0] + 0.02 * rng.standard_normal(g.nwet)
    obs[rng.random(g.nwet) > 0.6] = np.nan

    def objective(comm, tag):
        m = p_model(g, npp, po4, 2.1, sigma2=0.0)
        sysm = ModelSystem(m, DistributedGrid(g, comm), T)
        return Objective(sysm, [Observation("DIP", obs)], prefix=tag)

    for pre in ("rfi_", "rpi_", "rri_"):
        PETSc.Options().setValue(pre + "tao_gatol", "1e-12")   # tight convergence (see test_inversion.py)
    full_obj = objective(PETSc.COMM_SELF, "rf_")
    full = Inversion(full_obj, prefix="rfi_").run()
    if mpi.rank == 0:
        o = objective(PETSc.COMM_SELF, "rp_")
        Inversion(o, prefix="rpi_", checkpoint=ck, stop_after=2).run()
    mpi.Barrier()
    o2 = objective(PETSc.COMM_WORLD, "rr_")
    res = Inversion(o2, prefix="rri_", checkpoint=ck).run(resume=True)
    ok = np.abs(res["x"] - full["x"]).max() <= 1e-8
    assert all_ranks(ok)


@pytest.mark.parametrize("keep_ratio", ["0.1", "0.002"])
def test_structured_solver_parallel_equals_serial_direct(small, keep_ratio):
    """The structured path on N ranks gives the serial direct solution; with keep_ratio 0.002
    some labile-DOP columns stay in the Schur complement (their kept set is the same on every rank)."""
    g, T, npp, po4 = small
    ref = solve_all(small, PETSc.COMM_SELF)
    m = p_model(g, npp, po4, 2.1, sigma2=0.2)
    m.parameters.set(alpha=0.08, beta=0.6)
    sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_WORLD), T)
    prefix = f"pst{keep_ratio.replace('.', '')}_"
    PETSc.Options().setValue(prefix + "keep_ratio", keep_ratio)
    with SteadyState(sysm, prefix=prefix, structured=True) as ss:
        u = sysm.to_natural(ss.solve())
        u1, _ = ss.sensitivities(1)
        s1 = [sysm.to_natural(v) for v in u1]
        kept = {e: np.flatnonzero(mask) for e, mask in ss.solver.kept.items()}
    sysm.destroy()
    PETSc.Options().delValue(prefix + "keep_ratio")
    ok = rel(u, ref[0]) <= 1e-10 and all(rel(a, b) <= 1e-7 for a, b in zip(s1, ref[1]))
    if keep_ratio == "0.002":
        mpi = PETSc.COMM_WORLD.tompi4py()
        first = mpi.bcast(kept if mpi.rank == 0 else None)
        ok &= bool(kept) and all(np.array_equal(kept[e], first[e]) for e in kept)
    assert all_ranks(ok)


@pytest.mark.parametrize("path", ["ooc", "auto", "iterative"])
def test_solver_paths_parallel_equal_serial_direct(small, path, tmp_path_factory):
    """MUMPS out of core and the automatic choice give the serial in-core solution on N ranks."""
    import os
    g, T, npp, po4 = small
    ref = solve_all(small, PETSc.COMM_SELF)
    mpi = PETSc.COMM_WORLD.tompi4py()
    d = mpi.bcast(str(tmp_path_factory.mktemp("ooc")) if mpi.rank == 0 else None)
    os.environ["MUMPS_OOC_TMPDIR"] = d
    prefix = f"path{path}_"
    PETSc.Options().setValue(prefix + "solver", path)
    if path == "auto":                  # a user's workspace margin wins over the package's
        PETSc.Options().setValue(prefix + "mat_mumps_icntl_14", "30")
    m = p_model(g, npp, po4, 2.1, sigma2=0.2)
    m.parameters.set(alpha=0.08, beta=0.6)
    sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_WORLD), T)
    with SteadyState(sysm, prefix=prefix) as ss:
        chosen = ss.path
        u = sysm.to_natural(ss.solve())
        u1, u2 = ss.sensitivities(2)
        s1 = [sysm.to_natural(v) for v in u1]
        s2 = {k: sysm.to_natural(v) for k, v in u2.items()}
        factor = ss.solver._mumps() if chosen in ("ooc", "direct") else ss.solver.coarse._mumps()
        icntl22, icntl14 = factor.getMumpsIcntl(22), factor.getMumpsIcntl(14)
    sysm.destroy()
    PETSc.Options().delValue(prefix + "solver")
    PETSc.Options().delValue(prefix + "mat_mumps_icntl_14")
    # iterative: FGMRES to 1e-11 of ||b|| on a near-singular system -> sensitivities to ~1e-8
    # (the structured path's tolerance, 1e-7, is used for them)
    tol_u, tol_1, tol_2 = (1e-9, 1e-7, 1e-6) if path == "iterative" else (1e-10, 1e-10, 1e-9)
    ok = rel(u, ref[0]) <= tol_u and all(rel(a, b) <= tol_1 for a, b in zip(s1, ref[1]))
    ok &= all(rel(s2[k], ref[2][k]) <= tol_2 for k in ref[2])
    if path == "ooc":
        ok &= chosen == "ooc" and icntl22 == 1
    elif path == "iterative":
        # the coarse product's -matptap_via (allatonce on several ranks) lived for that call only
        ok &= chosen == "iterative" and not PETSc.Options().hasName("matptap_via")
        ok &= not PETSc.Options().hasName(prefix + "coarse_mat_mumps_icntl_14")
    else:
        ok &= chosen == "direct"          # a tiny problem fits in memory
    # MUMPS' workspace margin: 5 % on several ranks (MUMPS' 20 on one), for that solver only; the user's 30 wins
    ok &= icntl14 == (30 if path == "auto" else 5 if mpi.size > 1 else 20)
    ok &= not PETSc.Options().hasName(prefix + "mat_mumps_icntl_14")
    assert all_ranks(ok)


def test_structured_adjoint_hessian_on_n_ranks_equals_serial_forward(small):
    """What runs use by default (structured path, adjoint Hessian through the transposed block
    GMRES) on N ranks equals the serial direct path with forward second-order sensitivities."""
    g, T, npp, po4 = small
    rng = np.random.default_rng(11)
    u, _, _ = solve_all(small, PETSc.COMM_SELF, sigma2=0.3)
    obs = u[0] + 0.02 * rng.standard_normal(g.nwet)
    obs[rng.random(g.nwet) > 0.6] = np.nan
    out = {}
    for comm, path, mode in ((PETSc.COMM_SELF, "direct", "forward"), (PETSc.COMM_WORLD, "structured", "adjoint")):
        prefix = f"ah{comm.getSize()}{path}_"
        PETSc.Options().setValue(prefix + "solver", path)
        m = p_model(g, npp, po4, 2.1, sigma2=0.3)
        m.parameters.set(alpha=0.06, beta=0.55)
        sysm = ModelSystem(m, DistributedGrid(g, comm), T)
        obj = Objective(sysm, [Observation("DIP", obs)], prefix=prefix, hessian=mode)
        x0 = m.parameters.get_x()
        obj.evaluate(x0, order=1)
        out[path] = obj.evaluate(x0)
        assert obj.steady.path == path
        obj.destroy()
        sysm.destroy()
    (f0, g0, H0), (f1, g1, H1) = out["direct"], out["structured"]
    ok = abs(f1 - f0) <= 1e-9 * abs(f0)
    ok &= np.abs(g1 - g0).max() <= 1e-7 * np.abs(g0).max()
    ok &= np.abs(H1 - H0).max() <= 1e-7 * np.abs(H0).max()
    assert all_ranks(bool(ok))



def test_a_failed_factorization_is_the_same_error_on_every_rank():
    """A singular distributed matrix: every rank raises MUMPS' INFOG(1) = -10 at set-up (none hangs in a
    later collective call), and the package's options are gone afterwards."""
    from bcp_hpc.errors import SolverError
    from bcp_hpc.solvers.linear import LinearSolver
    n = 40
    M = PETSc.Mat().createAIJ((n, n), nnz=1, comm=PETSc.COMM_WORLD)
    lo, hi = M.getOwnershipRange()
    for i in range(lo, hi):
        M.setValue(i, i, 0.0 if i == n // 2 else 1.0 + i)
    M.assemble()
    ls = LinearSolver(M, "singularmpi_")
    try:
        ls.setup()
        message = ""
    except SolverError as exc:
        message = str(exc)
    ls.destroy()
    M.destroy()
    ok = "INFOG(1) = -10" in message and "singularmpi_" in message
    ok &= not PETSc.Options().hasName("singularmpi_mat_mumps_icntl_14")
    assert all_ranks(ok)
