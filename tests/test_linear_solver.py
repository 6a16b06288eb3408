"""LinearSolver: the MUMPS workspace retry, and the structured solver's mass-conserving lumping."""
import numpy as np
import pytest
import scipy.sparse as sp

from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.solvers.linear import LinearSolver

PETSc = import_petsc4py()


def _matrix(n=400):
    A = (sp.random(n, n, density=4 / n, random_state=3) + sp.diags(np.full(n, 5.0))).tocsr()
    M = PETSc.Mat().createAIJ(size=(n, n), csr=(A.indptr, A.indices, A.data), comm=PETSc.COMM_SELF)
    M.assemble()
    return A, M


def test_solve_array_equals_scipy_for_changing_block_sizes():
    """``solve_array`` (kept dense matrices, one MatMatSolve per block) equals SciPy's solve for
    blocks of 3, then 2, then 3 columns again, and on a Krylov path (column by column)."""
    import scipy.sparse.linalg as spl
    A, M = _matrix()
    rng = np.random.default_rng(5)
    with LinearSolver(M, "solvearray_") as direct, \
            LinearSolver(M, "solvearrayk_", defaults={"ksp_type": "gmres", "pc_type": "jacobi"}) as krylov:
        for k in (3, 2, 3):
            B = rng.standard_normal((A.shape[0], k))
            ref = spl.spsolve(A.tocsc(), B)
            X = np.array(direct.solve_array(B))
            assert np.abs(X - ref).max() <= 1e-12 * np.abs(ref).max()
            assert direct._dense[0][2] == k
            Xk = krylov.solve_array(B)
            assert np.abs(Xk - ref).max() <= 1e-9 * np.abs(ref).max()


class _FailingKSP:
    """Delegates to a real KSP, but the first ``fail`` setUp calls raise like MUMPS does on INFOG(1) = -9."""

    def __init__(self, ksp, fail):
        self._ksp, self.fail = ksp, fail

    def setUp(self):
        if self.fail:
            self.fail -= 1
            raise PETSc.Error(76)        # PETSC_ERR_LIB, what a failed MUMPS factorization returns
        return self._ksp.setUp()

    def __getattr__(self, name):
        return getattr(self._ksp, name)


class _FakeFactor:
    def __init__(self, icntl14):
        self.icntl14 = icntl14

    def getMumpsInfog(self, i):
        return -9                        # "main internal real/complex workspace too small"

    def getMumpsIcntl(self, i):
        return self.icntl14


def test_mumps_workspace_error_is_retried_with_more_workspace_and_reported(caplog):
    """A real INFOG(1) = -9 could not be provoked with MUMPS 5.5 here (ICNTL(14) = 0, no column
    permutation, tiny pivots all factor fine), so the failure is injected at KSPSetUp and MUMPS'
    answer to INFOG(1) is simulated; the retry path itself (options, reset, refactor) is real."""
    A, M = _matrix()
    ls = LinearSolver(M, "retry_")
    ls.ksp = _FailingKSP(ls.ksp, fail=2)
    ls._mumps = lambda: _FakeFactor(PETSc.Options().getInt("retry_mat_mumps_icntl_14", 20))
    with caplog.at_level("WARNING"):
        ls.setup()
    assert ls.mumps_retries == 2
    assert PETSc.Options().getInt("retry_mat_mumps_icntl_14") == 100      # 20 -> 50 -> 100
    assert sum("MUMPS workspace too small" in r.message for r in caplog.records) == 2
    b = M.createVecLeft()
    b.setArray(np.arange(A.shape[0], dtype=float))
    x = ls.solve(b)
    assert np.allclose(A @ x.getArray(), b.getArray(), rtol=0, atol=1e-10)
    ls.ksp = ls.ksp._ksp
    ls.destroy()
    PETSc.Options().delValue("retry_mat_mumps_icntl_14")


def test_persistent_workspace_error_gives_up_with_a_clear_error():
    from bcp_hpc.errors import SolverError
    A, M = _matrix()
    ls = LinearSolver(M, "retry2_")
    ls.ksp = _FailingKSP(ls.ksp, fail=10)
    ls._mumps = lambda: _FakeFactor(20)
    with pytest.raises(SolverError, match="retry2_"):
        ls.setup()
    assert ls.mumps_retries == 3
    ls.ksp = ls.ksp._ksp
    ls.destroy()
    PETSc.Options().delValue("retry2_mat_mumps_icntl_14")


@pytest.fixture
def labile_system(small_grid):
    """P model with a labile pool (sigma2 = 0.3) on the small world: (grid, model, system, zero state, Jacobian)."""
    from bcp_hpc.grid.distributed import DistributedGrid
    from bcp_hpc.grid.embedded import synthetic_npp, synthetic_phosphate
    from bcp_hpc.models.pmodel import p_model
    from bcp_hpc.models.system import ModelSystem
    from bcp_hpc.operators.circulation import synthetic_circulation
    g = small_grid
    T, _ = synthetic_circulation(g)
    m = p_model(g, synthetic_npp(g, "vgpm"), synthetic_phosphate(g), 2.1, sigma2=0.3)
    sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_SELF), T)
    u0 = sysm.dgrid.create_vec(sysm.nt)
    u0.set(0.0)
    J = sysm.jacobian(u0)
    yield g, m, sysm, u0, J
    J.destroy()
    u0.destroy()
    sysm.destroy()


def test_structured_lumping_keeps_the_volume_weighted_column_sums(labile_system):
    """The column-local stand-in C for labile DOP's transport block keeps 1^T V C = 1^T V J
    (what horizontal transport moves is put back on the diagonal), without lumping it does not."""
    from bcp_hpc.solvers.structured import StructuredSolver
    g, m, sysm, u0, J = labile_system
    e = m.tracer_names.index("DOPl")
    vol = g.box_volume[sysm.loc]
    defects = {}
    for lump in (True, False):
        s = StructuredSolver(sysm, J, f"lump{int(lump)}_", lump=lump)
        target = s._global_colsum(e, e)
        # independent: V-weighted column sums of J_ll straight from the model's global blocks
        Jll = sum(sp.csr_matrix(t) if not (isinstance(t, np.ndarray) and t.ndim == 1) else sp.diags(t)
                  for t in sysm.blocks[(e, e)])
        assert np.allclose(target, (Jll.T @ g.box_volume)[sysm.loc], rtol=1e-12, atol=0)
        got = np.zeros(sysm.nloc)
        for K, idx in s.groups.items():
            C = np.linalg.inv(s.cinv[e][K])                       # the column blocks of C
            got[idx] = np.einsum("ci,cij->cj", vol[idx], C)
        defects[lump] = np.abs(got - target).max() / np.abs(target).max()
        s.destroy()
    assert defects[True] < 1e-10
    assert defects[False] > 1e-4


def _direct_and_structured(labile_system, tag):
    """Right-hand side F(u0), a direct solver and its solution, and a structured solver."""
    from bcp_hpc.solvers.structured import StructuredSolver
    _, _, sysm, u0, J = labile_system
    b = sysm.residual(u0)
    ref = LinearSolver(J, f"refdirect{tag}_")
    x_ref = ref.solve(b).getArray().copy()
    return b, ref, x_ref, StructuredSolver(sysm, J, f"refine{tag}_")


def test_structured_gmres_absorbs_an_inexact_preconditioner(labile_system, caplog):
    """A noisy P^-1 (an ill-conditioned Schur factor near parameter bounds) is not a fixed linear
    operator; GMRES keeps Z = P^-1 V (flexible form), so its estimate stays the true residual and
    the solution equals the direct one without refinement."""
    b, ref, x_ref, s = _direct_and_structured(labile_system, "1")
    exact = s._precondition
    rng = np.random.default_rng(0)
    s._precondition = lambda R, t=False: exact(R, t) * (1.0 + 1e-5 * rng.standard_normal(R.shape))
    with caplog.at_level("DEBUG", logger="bcp_hpc.solvers.structured"):
        x = s.solve(b).getArray().copy()
    assert not any("refining" in r.message for r in caplog.records)
    assert np.abs(x - x_ref).max() <= 1e-8 * np.abs(x_ref).max()
    s._precondition = exact
    s.destroy()
    ref.destroy()


def test_structured_refinement_recovers_a_lagging_true_residual(labile_system, caplog):
    """When the true residual lags GMRES' estimate (rounding in the near-singular P system at
    OCIM2 size), restarts on the true residual close the gap, each to ``rtol ||b|| / ||r||``
    relative to its own right-hand side rather than to ``rtol`` again."""
    b, ref, x_ref, s = _direct_and_structured(labile_system, "2")
    gmres = s._gmres
    targets = []
    rng = np.random.default_rng(1)

    def lagging(R, apply, dots, transpose, tol):
        targets.append(np.max(tol))
        dX, its = gmres(R, apply, dots, transpose, tol)
        if len(targets) == 1:                       # the first cycle's result is off by 1e-6
            dX = dX * (1.0 + 1e-6 * rng.standard_normal(dX.shape))
        return dX, its

    s._gmres = lagging
    with caplog.at_level("DEBUG", logger="bcp_hpc.solvers.structured"):
        x = s.solve(b).getArray().copy()
    assert any("refining" in r.message for r in caplog.records)
    assert len(targets) >= 2 and targets[0] == s.rtol
    assert s.rtol < targets[1] <= 0.1              # looser: the restart only has to reach rtol ||b||
    assert np.abs(x - x_ref).max() <= 1e-8 * np.abs(x_ref).max()
    s.destroy()
    ref.destroy()


def _kept_field_colsums(s, e):
    """V-weighted column sums of S's kept field of tracer ``e`` (its own block), at the kept boxes."""
    sysm = s.system
    i = s.S_fields.index(e)
    n = sysm.grid.nwet
    ia, ja, a = s._S.getValuesCSR()
    S = sp.csr_matrix((a, ja, ia), shape=s._S.getSize())
    gidx = sysm.dgrid.global_index(len(s.S_fields))
    block = S[gidx[i]][:, gidx[i]]                      # natural order (one rank: all of it)
    assert block.shape == (n, n)
    return np.asarray(block.T @ sysm.grid.box_volume)


def test_structured_kept_columns_conserve_and_equal_the_direct_solution(labile_system):
    """Columns where labile DOP's horizontal exchange is large stay in S: the kept block keeps
    1^T V of J_ll at the kept boxes (what it exchanges with eliminated columns goes to the
    diagonal), the other rows of the field are identity rows, and forward and transposed solves
    equal the direct ones for no, some and all columns kept (all kept: fewer GMRES iterations)."""
    from bcp_hpc.solvers.structured import StructuredSolver
    g, m, sysm, u0, J = labile_system
    e = m.tracer_names.index("DOPl")
    b = sysm.residual(u0)
    ref = LinearSolver(J, "keepdirect_")
    x_ref = ref.solve(b).getArray().copy()
    xt_ref = ref.solve(b, transpose=True).getArray().copy()
    # independent: the V-weighted column sums of J_ll from the model's global blocks
    Jll = sum(sp.csr_matrix(t) if not (isinstance(t, np.ndarray) and t.ndim == 1) else sp.diags(t)
              for t in sysm.blocks[(e, e)])
    target = np.asarray(Jll.T @ g.box_volume)
    kept_counts, sweeps = {}, {}
    for ratio in (1e9, 0.002, 0.0):
        s = StructuredSolver(sysm, J, f"keep{len(kept_counts)}_", keep_ratio=ratio)
        mask = s.kept.get(e, np.zeros(g.nwet, dtype=bool))
        kept_counts[ratio] = int(mask.sum())
        if mask.any():
            sums = _kept_field_colsums(s, e)
            assert np.abs(sums[mask] - target[mask]).max() <= 1e-10 * np.abs(target).max()
            assert np.allclose(sums[~mask], g.box_volume[~mask], rtol=1e-14)     # identity rows
        x = s.solve(b).getArray().copy()
        xt = s.solve(b, transpose=True).getArray().copy()
        assert np.abs(x - x_ref).max() <= 1e-8 * np.abs(x_ref).max()
        assert np.abs(xt - xt_ref).max() <= 1e-8 * np.abs(xt_ref).max()
        sweeps[ratio] = list(s.sweeps)
        s.destroy()
    assert kept_counts[1e9] == 0 and 0 < kept_counts[0.002] < kept_counts[0.0]
    assert all(a < b for a, b in zip(sweeps[0.0], sweeps[1e9])), sweeps
    ref.destroy()


def test_structured_outer_rtol_option_trades_iterations_for_accuracy(labile_system):
    """``-<prefix>outer_rtol`` sets the outer GMRES tolerance: a tighter one takes more iterations
    and ends with a smaller true residual, both solutions within their tolerance of the direct one."""
    from bcp_hpc.solvers.structured import StructuredSolver
    b, ref, x_ref, default = _direct_and_structured(labile_system, "3")
    default.destroy()
    sysm, J = labile_system[2], labile_system[4]
    results = {}
    for tag, rtol in (("loose", 1e-6), ("tight", 1e-12)):
        PETSc.Options().setValue(f"outer{tag}_outer_rtol", rtol)
        s = StructuredSolver(sysm, J, f"outer{tag}_")
        assert s.rtol == rtol
        x = s.solve(b).getArray().copy()
        results[tag] = (s.sweeps[-1], s.verified_residual, np.abs(x - x_ref).max() / np.abs(x_ref).max())
        s.destroy()
    assert results["tight"][0] > results["loose"][0]
    assert results["tight"][1] < results["loose"][1]
    assert results["tight"][2] <= 1e-9 and results["loose"][2] <= 1e-3
    ref.destroy()
