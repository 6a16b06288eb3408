"""The structured solver: eliminated fields, Schur factor, preconditioned block GMRES (see the package)."""
from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp

from ...errors import SolverError
from ...grid.distributed import LocalDiagonal
from ...petsc_env import import_petsc4py
from ..base import Solver
from ..linear import LinearSolver, metis_ordering_expected
from ..options import get_option
from . import mumps
from .columns import WaterColumns
from .krylov import block_fgmres
from .kept import choose_kept_columns
from .schur import add_kept_blocks, schur_terms

PETSc = import_petsc4py()
log = logging.getLogger(__name__)


class StructuredSolver(Solver):
    """``lin``: the :class:`~bcp_hpc.models.system.Linearisation` of the state."""

    #: ``solve(b, rtol=...)`` takes a looser tolerance for corrections (iterative refinement)
    accepts_rtol = True

    def __init__(self, system, lin, prefix: str, rtol: float = 1e-11, max_sweeps: int = 60, stall_tol: float = 1e-7,
                 lump: bool = True, max_refinements: int = 3, keep_ratio: float | None = None):
        self.max_refinements = max_refinements
        self.refine_above = 1e-8
        self.stall_tol = stall_tol
        self.lump = lump
        self.system = system
        self.prefix = prefix
        self.rtol = get_option(prefix, "outer_rtol", rtol)
        self.max_sweeps = max_sweeps
        model = system.model
        particles = get_option(prefix, "eliminate_particles")
        self.E = [a for a, t in enumerate(model.tracers) if (t.transport == "sinking" and particles) or t.eliminate]
        self.K = [a for a in range(system.nt) if a not in self.E]
        if not self.E or not self.K:
            raise SolverError("structured solver needs both eliminated and kept tracers")
        self.lin = lin
        self.A = lin.matrix
        self.schur = None
        self._S = None
        self._assembly = None     # S's pattern on this rank, reused while the terms keep theirs
        self.sweeps = []
        self.columns = WaterColumns(system.grid.box_k[system.loc])
        self.keep_ratio = get_option(prefix, "keep_ratio") if keep_ratio is None else keep_ratio
        self.kept = choose_kept_columns(system, lin.terms, self.E, self.keep_ratio)
        self._elim_local = {e: ~mask[system.loc] for e, mask in self.kept.items()}
        # the fields of S: the kept tracers, then the kept columns of partly eliminated ones
        self.S_fields = list(self.K) + list(self.kept)
        self.setup()

    @staticmethod
    def applicable(system) -> bool:
        return any(t.transport == "sinking" or t.eliminate for t in system.model.tracers)

    # ------------------------------------------------------------------ local blocks
    def _elim_mask(self, e):
        """Local mask of the boxes where tracer ``e`` is eliminated (all of them unless partly kept)."""
        if e in self._elim_local:
            return self._elim_local[e]
        return np.ones(self.system.nloc, dtype=bool)

    def _block(self, a, b):
        """Sum of the terms of J_ab restricted to local rows and columns (SciPy), or None."""
        loc = self.system.loc
        mats = [sp.diags(t.values) if isinstance(t, LocalDiagonal) else sp.csr_matrix(t)[loc][:, loc]
                for t in self.lin.terms.get((a, b), [])]
        if not mats:
            return None
        return sp.csr_matrix(sum(mats[1:], mats[0]))

    def _global_colsum(self, a, b):
        """Volume-weighted column sums ``sum_i V_i J_ab[i, j]`` over all rows (every rank's), at the local
        columns j."""
        vol = self.system.grid.box_volume
        partial = np.zeros(vol.size)
        loc = self.system.loc
        for t in self.lin.terms.get((a, b), []):
            if isinstance(t, LocalDiagonal):
                partial[loc] += vol[loc] * t.values
            else:
                partial += np.asarray(sp.csr_matrix(t).T @ vol)
        return self.system.dgrid.reduce_to_local(partial)

    @staticmethod
    def _is_diag(M):
        if M is None:
            return True
        coo = M.tocoo()
        return bool(np.all(coo.row == coo.col))

    def _local_diagonal(self, a, b):
        M = self._block(a, b)
        if not self._is_diag(M):
            raise SolverError("structured solver: couplings of eliminated tracers must be local (diagonal)")
        return M

    # ------------------------------------------------------------------ setup
    def setup(self):
        t0 = time.perf_counter()
        sysm = self.system
        nloc = sysm.nloc
        terms = self.lin.terms
        self.diag = {}
        for a in self.E:
            for b in range(sysm.nt):
                if b != a and (a, b) in terms:
                    M = self._local_diagonal(a, b)
                    if b in self.E and M is not None and M.nnz and np.any(M.data):
                        raise SolverError("structured solver: eliminated tracers must not couple to each other")
                    self.diag[(a, b)] = M.diagonal() if M is not None else np.zeros(nloc)
                if b != a and (b, a) in terms:
                    M = self._local_diagonal(b, a)
                    self.diag[(b, a)] = M.diagonal() if M is not None else np.zeros(nloc)
        # couplings through a partly kept tracer: the elimination sees only its non-kept boxes,
        # the kept ones are coupled inside S (self.kept_diag keeps the full diagonals for that)
        self.kept_diag = {}
        for e in self.kept:
            keep = ~self._elim_mask(e)
            for key in [k for k in self.diag if e in k]:
                self.kept_diag[key] = np.where(keep, self.diag[key], 0.0)
                self.diag[key] = np.where(keep, 0.0, self.diag[key])
        # dense per-column inverses of the column-local part of J_ee
        self.cinv = {}
        self.lower = {}
        colid = self.columns.start
        for e in self.E:
            M = self._block(e, e).tocoo()
            same = colid[M.row] == colid[M.col]
            r, c, v = M.row[same], M.col[same], M.data[same]
            if self.lump and sysm.model.tracers[e].transport != "sinking":
                # mass-conserving lumping (sinking operators are column-local: nothing dropped): what
                # the dropped (horizontal) entries of column j carry, sum_i V_i J[i, j] over rows outside
                # j's water column (any rank), moves to the diagonal, so 1^T V C_e = 1^T V J_ee.
                # Without it the approximation leaks tracer and the near-singular P-inventory mode
                # (fixed only by geological restoring) costs extra outer iterations.
                vol = sysm.grid.box_volume[sysm.loc]
                inside = np.bincount(c, weights=v * vol[r], minlength=nloc)
                lumped = (self._global_colsum(e, e) - inside) / vol
                r = np.r_[r, np.arange(nloc)]
                c = np.r_[c, np.arange(nloc)]
                v = np.r_[v, lumped]
            # structurally lower triangular (downward sinking) column blocks: decided from the
            # pattern, so S keeps one nonzero pattern across refactorizations
            self.lower[e] = bool(np.all(self.columns.pos[r] >= self.columns.pos[c]))
            self.cinv[e] = self.columns.inverses(r, c, v)
        t1 = time.perf_counter()
        self._build_schur()
        log.debug("structured setup: column inverses %.2f s, Schur assembly + factorization %.2f s",
                  t1 - t0, time.perf_counter() - t1)

    def _build_schur(self):
        sysm = self.system
        blocks = schur_terms(self.lin.terms, self.K, self.E, self.diag, self.cinv, self.lower, self.columns,
                             sysm.loc, sysm.grid.nwet)
        add_kept_blocks(blocks, self.lin.terms, self.S_fields, self.kept, self.kept_diag, sysm.grid.box_volume,
                        sysm.loc, sysm.dgrid.comm.tompi4py())
        self._assembly, new_pattern = sysm.dgrid.kept_assembly(self._assembly, blocks, len(self.S_fields))
        if new_pattern:
            self.destroy()          # a new pattern needs a new matrix and a new symbolic analysis
        self._S = self._assembly.matrix(blocks, mat=self._S)
        log.debug("structured: Schur complement assembled, %d nonzeros", self._S.getInfo()["nz_used"])
        if self.schur is None:
            extra = None
            if self._S.getSize()[0] > mumps.AMF_ABOVE_UNKNOWNS:
                if not metis_ordering_expected(self.prefix + "schur_", self._S):
                    extra = mumps.large_schur_defaults()
                self.rhs_block = mumps.LARGE_RHS_BLOCK
            self.schur = LinearSolver(self._S, self.prefix + "schur_", extra_defaults=extra)
            self.schur.setup()
        else:
            self.schur.refactor(self._S)

    def refactor(self, lin=None):
        if lin is not None:
            self.lin = lin
            self.A = lin.matrix
        self.setup()

    # ------------------------------------------------------------------ preconditioner
    def _precondition(self, R, transpose: bool = False):
        """Block-LU solve with C_E for J_EE.  R: (nt, nloc, nrhs) local arrays.

        With ``transpose`` the transposed preconditioner (for the adjoint system): the same block
        elimination of ``J^T``, whose couplings are the diagonal blocks swapped (``D_Ke <-> D_eK``),
        with ``C_e^-T`` and ``S^-T``."""
        nrhs = R.shape[2]
        into = (lambda a, e: (e, a)) if transpose else (lambda a, e: (a, e))    # coupling K<-E
        outof = (lambda e, b: (b, e)) if transpose else (lambda e, b: (e, b))   # coupling E<-K
        cols = self.columns
        y = {e: cols.apply(self.cinv[e], R[e] * self._elim_mask(e)[:, None], transpose) for e in self.E}
        rK = np.array([R[a] - sum(self.diag[into(a, e)][:, None] * y[e] for e in self.E if into(a, e) in self.diag)
                       for a in self.K]
                      + [R[e] * (~self._elim_mask(e))[:, None] for e in self.kept])   # (nS, nloc, nrhs)
        nS = len(self.S_fields)
        # this rank's part of an S vector is field-major, (nS, nloc) raveled
        xK = self.schur.solve_array(rK.reshape(nS * rK.shape[1], nrhs), transpose=transpose).reshape(rK.shape)
        X = np.empty_like(R)
        for i, a in enumerate(self.K):
            X[a] = xK[i]
        for e in self.E:
            # start from zeros: with sigma2 = 0 labile DOP receives nothing, so it may have no coupling at all
            coupling = sum((self.diag[outof(e, b)][:, None] * X[b] for b in self.K if outof(e, b) in self.diag),
                           np.zeros_like(y[e]))
            X[e] = y[e] - cols.apply(self.cinv[e], coupling, transpose)
        for i, e in enumerate(self.S_fields):
            if e in self.kept:
                keep = ~self._elim_mask(e)
                X[e][keep] = xK[i][keep]
        return X

    # ------------------------------------------------------------------ solves
    def solve_many(self, B_cols, transpose: bool = False, rtol: float | None = None):
        """Right-preconditioned flexible GMRES on the full Jacobian (its transpose with ``transpose``,
        for adjoint solves), in lockstep for all right-hand sides (:mod:`.krylov`).

        Rounding in the near-singular P system can leave the true residual behind GMRES' estimate
        (OCIM2 size: 1.5e-8 where GMRES reports 1e-12): up to ``max_refinements`` restarts on the true
        residual (iterative refinement, when it is above 1e-8; each to ``rtol ||b|| / ||r||`` of its
        own right-hand side) close the gap; it must end below ``stall_tol`` (1e-7).  ``rtol``
        (default the solver's 1e-11) loosens the tolerance for a correction whose size only has to
        be known roughly (a Newton refinement step of a linear model)."""
        if not B_cols:
            return []
        from mpi4py import MPI
        comm = self.system.dgrid.comm.tompi4py()
        nt, nloc = self.system.nt, self.system.nloc
        B = np.stack([b.getArray(readonly=True).reshape(nt, nloc) for b in B_cols], axis=2)
        nr = B.shape[2]
        op = self.A.multTranspose if transpose else self.A.mult
        xv = self.A.createVecRight()
        yv = self.A.createVecLeft()

        def dots(X, Ys):
            """Inner products of the blocks X and each Y in Ys, per right-hand side: (len(Ys), nrhs)."""
            local = np.array([np.einsum("abr,abr->r", X, Y) for Y in Ys])
            return comm.allreduce(local, op=MPI.SUM)

        def apply(X):
            Y = np.empty_like(X)
            for r in range(X.shape[2]):
                xv.getArray()[:] = X[:, :, r].ravel()
                op(xv, yv)
                Y[:, :, r] = yv.getArray(readonly=True).reshape(nt, nloc)
            return Y

        tol = self.rtol if rtol is None else max(rtol, self.rtol)
        refine_above = max(self.refine_above, 10.0 * tol)
        stall_tol = max(self.stall_tol, 100.0 * tol)
        bnorm = np.sqrt(dots(B, [B]))[0]
        safe = np.where(bnorm > 0, bnorm, 1.0)
        X = np.zeros_like(B)
        R = B
        iterations = 0
        previous = np.inf
        try:
            target = tol
            for attempt in range(1 + self.max_refinements):
                dX, its = self._gmres(R, apply, dots, transpose, target)
                X += dX
                iterations += its
                R = B - apply(X)
                rnorm = np.sqrt(dots(R, [R]))[0]
                worst = float((rnorm / safe).max())
                # good enough (the P system's round-off floor is ~1e-9), or refinement stagnates
                done = worst <= refine_above or worst > 0.5 * previous
                log.debug("structured: true relative residual %.2e after %d iterations%s", worst, iterations,
                          "" if done else "; refining")
                if done:
                    break
                previous = worst
                # a refinement only has to bring ||R|| to tol ||B||: relative to its own right-hand
                # side that is tol ||B|| / ||R||
                target = np.clip(tol * bnorm / np.where(rnorm > 0, rnorm, np.inf), tol, 0.1)
        finally:
            xv.destroy()
            yv.destroy()
        self.sweeps.append(iterations)
        self.verified_residual = worst          # max true ||b - J x|| / ||b|| of this call
        if worst > stall_tol:
            raise SolverError(f"structured solver: GMRES reached relative residual {worst:.2e} in {iterations} "
                              f"iterations ({attempt} refinements)")
        out = []
        for r in range(nr):
            v = self.system.dgrid.create_vec(nt)
            v.getArray()[:] = X[:, :, r].ravel()
            out.append(v)
        return out

    def _gmres(self, B, apply, dots, transpose, tol):
        """One flexible GMRES cycle preconditioned by :meth:`_precondition` (:mod:`.krylov`)."""
        return block_fgmres(B, apply, lambda V: self._precondition(V, transpose), dots, tol, self.max_sweeps)

    def solve(self, b, x=None, transpose=False, rtol: float | None = None):
        res = self.solve_many([b], transpose=transpose, rtol=rtol)[0]
        if x is not None:
            res.copy(x)
            res.destroy()
            return x
        return res

    def describe(self):
        kept = "".join(f", {int(m.sum())} boxes of {e} kept" for e, m in self.kept.items())
        return f"structured (eliminated {self.E}, Schur on {self.K}{kept}: {self.schur.describe()})"

    def destroy(self):
        if self.schur is not None:
            self.schur.destroy()
            self.schur = None
        if self._S is not None:
            self._S.destroy()
            self._S = None
