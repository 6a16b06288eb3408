"""Structured steady-state solver: column-local elimination + Schur complement + outer correction.

For models whose particle tracers (and fast-decaying dissolved pools declared with
``Tracer.eliminate``) couple to the rest only through *diagonal* (local) blocks, the
Jacobian is split into kept fields K and eliminated fields E.  With ``C_E`` the
column-local part of ``J_EE`` (exact for particles, whose operator is column-local; for a
fast pool like labile DOP the horizontal transport is left out):

    S = J_KK - J_KE C_E^-1 J_EK        (assembled, factored once with MUMPS)

``C_E^-1`` is computed as dense per-water-column inverses (every column lives on one rank,
so this needs no communication).  ``S`` has the sparsity of ``J_KK`` plus one dense
lower-column pattern per euphotic box.  The block-LU solve with ``C_E`` in place of ``J_EE``
is a right preconditioner ``P`` for GMRES on the full Jacobian, run in lockstep for all
right-hand sides (each preconditioner application is one ``MatMatSolve`` with ``S``), to
``||B - J X|| <= rtol ||B||`` (rtol 1e-11, ``-<prefix>outer_rtol``; the true residual must be below 1e-7, the
round-off floor of the near-singular P system).

Water columns where the column-local approximation of a fast pool is poor stay in ``S``:
a transported eliminated tracer keeps, as an extra field of ``S``, every water column in
which some box's horizontal (off-column) exchange exceeds ``keep_ratio`` (default 0.05,
``-<prefix>keep_ratio``; a negative value keeps none) of that box's diagonal.  On a 2 degree
lat-lon grid these are the few hundred columns next to the poles, where the boxes are narrow
and labile DOP's horizontal exchange reaches 65 % of its 12-hour decay; treated column-locally
they cost the outer GMRES two to three times its iterations.  Couplings between kept and
eliminated columns are left out of ``P`` (their volume-weighted column sums moved to the
diagonal, as for the column-local part); the non-kept rows of the extra field are identity
rows.

``-<prefix>eliminate_particles 0`` keeps particle tracers in ``S`` as well (sparse
couplings instead of one dense lower column pattern per euphotic box).

Enable with ``-steady_structured`` (or ``SteadyState(..., structured=True)``).  For the P
model the factorization is of a 2n system instead of 4n (plus the kept polar columns).
"""
from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp

from ..errors import SolverError
from ..petsc_env import import_petsc4py
from .linear import LinearSolver, metis_ordering_expected, set_default_options

PETSc = import_petsc4py()
log = logging.getLogger(__name__)

#: Schur complements larger than this get the large-S settings (see _build_schur): METIS-ordered full-rank
#: factor on one process, AMF + BLR instead of PORD on several, right-hand sides in blocks
AMF_ABOVE_UNKNOWNS = 200_000
#: a water column of a transported eliminated tracer stays in S when some box exchanges more than
#: this fraction of its diagonal with other columns (``-<prefix>keep_ratio``).  OCIM2 mask, synthetic
#: circulation, 2 ranks: 0.1 keeps 9,496 boxes and the sensitivities need 7 outer iterations per
#: block, 0.05 keeps 12,089 and they need 6, for the same factor flops (1.27e12 / 1.30e12); 0.03
#: keeps 17,524, still 6 iterations, 1.35e12 flops
KEEP_RATIO = 0.05
#: eliminate particle tracers (column-local, exact) before factoring S (``-<prefix>eliminate_particles``)
ELIMINATE_PARTICLES = True
#: block-low-rank compression tolerance of large Schur factors (``-<prefix>schur_mat_mumps_cntl_7``)
BLR_TOLERANCE = "1e-7"
#: right-hand sides per block solve when S is large (each needs its own Krylov basis; ``-<prefix>rhs_block``)
LARGE_RHS_BLOCK = 5


class StructuredSolver:
    def __init__(self, system, J, prefix: str, rtol: float = 1e-11, max_sweeps: int = 60, stall_tol: float = 1e-7,
                 lump: bool = True, max_refinements: int = 3, keep_ratio: float | None = None):
        self.max_refinements = max_refinements
        self.refine_above = 1e-8
        self.stall_tol = stall_tol
        self.lump = lump
        self.system = system
        self.prefix = prefix
        self.rtol = PETSc.Options().getReal(prefix + "outer_rtol", rtol)    # -<prefix>outer_rtol
        self.max_sweeps = max_sweeps
        model = system.model
        particles = PETSc.Options().getBool(prefix + "eliminate_particles", ELIMINATE_PARTICLES)
        self.E = [a for a, t in enumerate(model.tracers) if (t.transport == "sinking" and particles) or t.eliminate]
        self.K = [a for a in range(system.nt) if a not in self.E]
        if not self.E or not self.K:
            raise SolverError("structured solver needs both eliminated and kept tracers")
        self.A = J
        self.schur = None
        self._S = None
        self.sweeps = []
        self.verified_residual = None
        self.rhs_block = 0            # 0: all right-hand sides in one block (SteadyState._solve_blocks)
        self._columns()
        if keep_ratio is None:
            keep_ratio = PETSc.Options().getReal(prefix + "keep_ratio", KEEP_RATIO)
        self.keep_ratio = keep_ratio
        self._choose_kept_columns()
        self.setup()

    @staticmethod
    def applicable(system) -> bool:
        return any(t.transport == "sinking" or t.eliminate for t in system.model.tracers)

    # ------------------------------------------------------------------ columns
    def _columns(self):
        g = self.system.grid
        loc = self.system.loc
        k = g.box_k[loc]
        starts = np.flatnonzero(k == 0)
        lens = np.diff(np.r_[starts, loc.size])
        self.col_start = np.repeat(starts, lens)           # local start of each box's column
        self.pos = np.arange(loc.size) - self.col_start    # position in the column
        self.groups = {}
        for K in np.unique(lens):
            st = starts[lens == K]
            self.groups[int(K)] = st[:, None] + np.arange(K)[None, :]   # (ncol, K) local indices

    def _choose_kept_columns(self):
        """``self.kept[e]``: global natural-order mask of the boxes of tracer ``e`` kept in S.

        Decided once, from the first Jacobian (the transport and the pool's decay rate), so S
        keeps one nonzero pattern across refactorizations."""
        sysm = self.system
        g = sysm.grid
        n = g.nwet
        column = g.box_ilat * g.shape[1] + g.box_ilon
        self.kept = {}
        self._elim_local = {}         # local masks of the eliminated boxes of partly kept tracers
        for e in self.E:
            if sysm.model.tracers[e].transport == "sinking" or self.keep_ratio < 0:
                continue
            # diagonal terms hold only this rank's boxes: sum them over ranks (one decision everywhere)
            M = self._global_block(e, all_ranks=True).tocoo()
            off = column[M.row] != column[M.col]
            exchange = np.bincount(M.col[off], weights=np.abs(M.data[off]), minlength=n)
            diag = np.abs(sp.csr_matrix(M).diagonal())
            poor = exchange > self.keep_ratio * np.where(diag > 0, diag, np.inf)
            if not poor.any():
                continue
            mask = np.isin(column, np.unique(column[poor]))
            self.kept[e] = mask
            self._elim_local[e] = ~mask[sysm.loc]
            log.info("structured: %s kept in the Schur complement in %d water columns (%d boxes): "
                     "horizontal exchange above %.2g of the diagonal", sysm.model.tracers[e].name,
                     np.unique(column[poor]).size, int(mask.sum()), self.keep_ratio)
        # the fields of S: the kept tracers, then the kept columns of partly eliminated ones
        self.S_fields = list(self.K) + list(self.kept)

    def _elim_mask(self, e):
        """Local mask of the boxes where tracer ``e`` is eliminated (all of them unless partly kept)."""
        if e in self._elim_local:
            return self._elim_local[e]
        return np.ones(self.system.nloc, dtype=bool)

    def _global_block(self, e, all_ranks: bool = False):
        """``J_ee`` as one SciPy matrix in natural order.  Its diagonal terms hold only this rank's
        boxes; ``all_ranks`` sums them over the ranks."""
        terms = self.system.blocks[(e, e)]
        diag = sum((t for t in terms if isinstance(t, np.ndarray)), np.zeros(self.system.grid.nwet))
        if all_ranks:
            diag = self.system.dgrid.comm.tompi4py().allreduce(diag)
        return sp.csr_matrix(sum((sp.csr_matrix(t) for t in terms if not isinstance(t, np.ndarray)), sp.diags(diag)))

    def _local(self, M):
        loc = self.system.loc
        return sp.csr_matrix(M)[loc][:, loc]

    def _block(self, a, b):
        """Sum of the terms of J_ab restricted to local rows/cols: (sparse local, diag local or None)."""
        terms = self.system.blocks.get((a, b), [])
        loc = self.system.loc
        mats = []
        for t in terms:
            if isinstance(t, np.ndarray) and t.ndim == 1:
                mats.append(sp.diags(t[loc]))
            else:
                mats.append(self._local(t))
        if not mats:
            return None
        return sp.csr_matrix(sum(mats[1:], mats[0]))

    def _global_colsum(self, a, b):
        """Volume-weighted column sums ``sum_i V_i J_ab[i, j]`` over all rows, at the local columns j."""
        sysm = self.system
        vol = sysm.grid.box_volume
        loc = sysm.loc
        out = np.zeros(loc.size)
        for t in sysm.blocks.get((a, b), []):
            if isinstance(t, np.ndarray) and t.ndim == 1:
                out += (vol * t)[loc]
            else:
                out += np.asarray(sp.csr_matrix(t).T @ vol)[loc]
        return out

    def _is_diag(self, M):
        if M is None:
            return True
        coo = M.tocoo()
        return bool(np.all(coo.row == coo.col))

    # ------------------------------------------------------------------ setup
    def setup(self):
        t0 = time.perf_counter()
        sysm = self.system
        nloc = sysm.nloc
        self.diag = {}
        for a in self.E:
            for b in range(sysm.nt):
                if b != a and (a, b) in sysm.blocks:
                    M = self._block(a, b)
                    if b in self.E and M is not None and M.nnz and np.any(M.data):
                        raise SolverError("structured solver: eliminated tracers must not couple to each other")
                    if not self._is_diag(M):
                        raise SolverError("structured solver: couplings of eliminated tracers must be local (diagonal)")
                    self.diag[(a, b)] = M.diagonal() if M is not None else np.zeros(nloc)
                if b != a and (b, a) in sysm.blocks:
                    M = self._block(b, a)
                    if not self._is_diag(M):
                        raise SolverError("structured solver: couplings of eliminated tracers must be local (diagonal)")
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
        colid = self.col_start
        for e in self.E:
            M = self._block(e, e).tocoo()
            same = colid[M.row] == colid[M.col]
            r, c, v = M.row[same], M.col[same], M.data[same]
            if self.lump and sysm.model.tracers[e].transport != "sinking":
                # mass-conserving lumping (sinking operators are column-local: nothing dropped):
                # what the dropped (horizontal) entries of column j carry,
                # sum_i V_i J[i, j] over rows outside j's water column (any rank), moves to the
                # diagonal, so 1^T V C_e = 1^T V J_ee.  Without it the approximation leaks tracer
                # and the near-singular P-inventory mode (fixed only by geological restoring,
                # 1/(10^6 yr)) costs extra outer iterations.
                vol = sysm.grid.box_volume[sysm.loc]
                kept = np.bincount(c, weights=v * vol[r], minlength=nloc)
                lumped = (self._global_colsum(e, e) - kept) / vol
                r = np.r_[r, np.arange(nloc)]
                c = np.r_[c, np.arange(nloc)]
                v = np.r_[v, lumped]
            inv = {}
            for K, idx in self.groups.items():
                inv[K] = np.zeros((idx.shape[0], K, K))
            # scatter entries into the dense column blocks
            group_of = np.zeros(nloc, dtype=np.int64)
            slot_of = np.zeros(nloc, dtype=np.int64)
            for K, idx in self.groups.items():
                group_of[idx.ravel()] = K
                slot_of[idx.ravel()] = np.repeat(np.arange(idx.shape[0]), K)
            for K in self.groups:
                sel = group_of[r] == K
                np.add.at(inv[K], (slot_of[r[sel]], self.pos[r[sel]], self.pos[c[sel]]), v[sel])
            # structurally lower triangular (downward sinking) column blocks: decided from the
            # pattern, so S keeps one nonzero pattern across refactorizations
            self.lower[e] = bool(np.all(self.pos[r] >= self.pos[c]))
            inv = {K: np.linalg.inv(blocks) for K, blocks in inv.items()}
            self.cinv[e] = inv
        t1 = time.perf_counter()
        self._build_schur()
        log.debug("structured setup: column inverses %.2f s, Schur assembly + factorization %.2f s",
                  t1 - t0, time.perf_counter() - t1)

    def _apply_cinv(self, e, X, transpose: bool = False):
        """Column-local ``C_e^-1 X`` (``C_e^-T X`` with ``transpose``) for X of shape (nloc,) or (nloc, nrhs)."""
        out = np.empty_like(X)
        for K, idx in self.groups.items():
            Minv = self.cinv[e][K]                         # (ncol, K, K)
            if transpose:
                Minv = Minv.transpose(0, 2, 1)
            blk = X[idx]                                   # (ncol, K[, nrhs])
            # batched matmul: ~14x faster than the equivalent einsum for several right-hand sides
            out[idx] = (Minv @ blk[:, :, None])[:, :, 0] if X.ndim == 1 else Minv @ blk
        return out

    def _build_schur(self):
        sysm = self.system
        n = sysm.grid.nwet
        loc = sysm.loc
        blocks = {}
        for i, a in enumerate(self.K):
            for j, b in enumerate(self.K):
                terms = list(sysm.blocks.get((a, b), []))
                for e in self.E:
                    dKe = self.diag.get((a, e))
                    deK = self.diag.get((e, b))
                    if dKe is None or deK is None or not np.any(dKe) or not np.any(deK):
                        continue
                    # -diag(J_ae) C_e^-1 diag(J_eb): only columns j with J_eb[j] != 0
                    rows, cols, vals = [], [], []
                    for K, idx in self.groups.items():
                        Minv = self.cinv[e][K]                       # (ncol, K, K)
                        w = deK[idx]                                  # (ncol, K)
                        nz = np.nonzero(w)
                        if nz[0].size == 0:
                            continue
                        cc, jj = nz
                        # all rows ii of the column for each nonzero (cc, jj)
                        val = -dKe[idx[cc]] * Minv[cc, :, jj] * w[cc, jj][:, None]     # (nnz, K)
                        keep = np.ones(val.shape, dtype=bool)
                        if self.lower[e]:
                            # a sinking operator's column block is lower triangular, so is its inverse:
                            # rows above the source box are structural zeros, left out of S (MUMPS'
                            # analysis crashed intermittently on 1 rank with ~190k explicit zeros)
                            keep = np.arange(K)[None, :] >= jj[:, None]
                        rows.append(idx[cc][keep])
                        cols.append(np.broadcast_to(idx[cc, jj][:, None], val.shape)[keep])
                        vals.append(val[keep])
                    if rows:
                        r = loc[np.concatenate(rows)]
                        c = loc[np.concatenate(cols)]
                        terms.append(sp.csr_matrix((np.concatenate(vals), (r, c)), shape=(n, n)))
                blocks[(i, j)] = terms
        self._add_kept_blocks(blocks)
        self._S = sysm.dgrid.matrix_from_blocks(blocks, len(self.S_fields), mat=self._S)
        log.debug("structured: Schur complement assembled, %d nonzeros", self._S.getInfo()["nz_used"])
        if self.schur is None:
            if self._S.getSize()[0] > AMF_ABOVE_UNKNOWNS:
                # on one process LinearSolver orders S with METIS (solvers/ordering.py), full rank:
                # OCIM2 mask, 1 rank, numeric factorization 20.8 s against 23.4 s with BLR (METIS'
                # fronts are too small for the compression to pay) and 26.8 s for AMF + BLR
                if not metis_ordering_expected(self.prefix + "schur_", self._S):
                    self._set_large_schur_defaults()
                self.rhs_block = LARGE_RHS_BLOCK
            self.schur = LinearSolver(self._S, self.prefix + "schur_")
            self.schur.setup()
        else:
            self.schur.refactor(self._S)

    def _set_large_schur_defaults(self):
        """MUMPS settings for a large Schur complement that MUMPS orders itself (several ranks)."""
        # Debian's MUMPS 5.5: PORD (the default ordering) reads out of bounds on this Schur
        # graph at OCIM2 size (valgrind: invalid reads of uninitialised memory in PORD's
        # findIndMultisecs, under shrinkDomainDecomposition, on every analysis; none on the
        # monolithic Jacobian).  Whether that segfaults depends on the process' heap: 5 of 8
        # one-rank runs, 2 of 3 two-rank `bench pmodel` runs in one session.  A segfault
        # cannot be caught, so large Schur factors are ordered with AMF on any number of
        # ranks (2 ranks, OCIM2 size: analysis + factorization 28.7 s instead of 19.7 s);
        # -<prefix>schur_mat_mumps_icntl_7 4 selects PORD again.
        # AMF's factor is larger than PORD's: it is stored block-low-rank compressed (BLR,
        # tolerance 1e-7: an inexact factor, which the outer GMRES absorbs; OCIM2 size,
        # 2 ranks, largest rank: 3.1 GiB after the factorization instead of 3.2 at 1e-8 and
        # 4.2 without BLR, same outer iterations and time; 1e-6 costs 1-2 more iterations
        # per solve); -<prefix>schur_mat_mumps_icntl_35 0 turns it off,
        # -<prefix>schur_mat_mumps_cntl_7 sets the tolerance.  The UCFS variant (ICNTL(36)=1,
        # compress before the off-diagonal updates) cuts the effective factor flops from
        # 5.6e11 to 5.2e11 (full rank: 1.3e12), 2 ranks 17.8 s instead of 21.0 s, same iterations
        set_default_options(self.prefix + "schur_", {"mat_mumps_icntl_7": "2", "mat_mumps_icntl_35": "2",
                                                      "mat_mumps_icntl_36": "1",
                                                      "mat_mumps_cntl_7": BLR_TOLERANCE})

    def _add_kept_blocks(self, blocks):
        """The kept columns of partly eliminated tracers as extra fields of S.

        Field ``e`` of S: ``J_ee`` between its kept boxes (couplings to non-kept boxes moved to
        the diagonal by their volume-weighted sums, so ``1^T V`` is conserved), identity rows at
        the other boxes, and the diagonal couplings of ``e`` with the kept tracers."""
        sysm = self.system
        n = sysm.grid.nwet
        vol = sysm.grid.box_volume
        loc = sysm.loc
        for i, e in enumerate(self.S_fields):
            if e not in self.kept:
                continue
            keep = self.kept[e]
            M = self._global_block(e)
            Dk = sp.diags(keep.astype(float))
            inner = sp.csr_matrix(Dk @ M @ Dk)
            # what the dropped entries of each kept column j carry, sum over rows i outside the
            # kept set of V_i M[i, j], goes to its diagonal
            dropped = np.asarray(M.T @ np.where(keep, 0.0, vol)) / vol
            diag = np.where(keep, dropped, 1.0)
            blocks[(i, i)] = [inner, diag]
            for j, b in enumerate(self.S_fields):
                if b == e:
                    continue
                for key, (r, c) in (((e, b), (i, j)), ((b, e), (j, i))):
                    if key in self.kept_diag:
                        full = np.zeros(n)
                        full[loc] = self.kept_diag[key]
                        blocks.setdefault((r, c), []).append(full)

    def refactor(self, J=None):
        if J is not None:
            self.A = J
        self.setup()

    # ------------------------------------------------------------------ preconditioner
    def _precondition(self, R, transpose: bool = False):
        """Block-LU solve with C_E for J_EE.  R: (nt, nloc, nrhs) local arrays.

        With ``transpose`` the transposed preconditioner (for the adjoint system): the same
        block elimination of ``J^T``, whose couplings are the diagonal blocks swapped
        (``D_Ke <-> D_eK``), with ``C_e^-T`` and ``S^-T``."""
        nrhs = R.shape[2]
        into = (lambda a, e: (e, a)) if transpose else (lambda a, e: (a, e))    # coupling K<-E
        outof = (lambda e, b: (b, e)) if transpose else (lambda e, b: (e, b))   # coupling E<-K
        y = {e: self._apply_cinv(e, R[e] * self._elim_mask(e)[:, None], transpose) for e in self.E}
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
            X[e] = y[e] - self._apply_cinv(e, coupling, transpose)
        for i, e in enumerate(self.S_fields):
            if e in self.kept:
                keep = ~self._elim_mask(e)
                X[e][keep] = xK[i][keep]
        return X

    # ------------------------------------------------------------------ solves
    #: ``solve(b, rtol=...)`` takes a looser tolerance for corrections (iterative refinement)
    accepts_rtol = True

    def solve_many(self, B_cols, transpose: bool = False, rtol: float | None = None):
        """Right-preconditioned GMRES on the full Jacobian (its transpose with ``transpose``, for
        adjoint solves), run in lockstep for all right-hand sides so that every preconditioner
        application is one block (MatMatSolve) solve with ``S``.

        The basis V and its preconditioned images Z = P^-1 V are stored (flexible form:
        ``x = Z y``, so an inexact ``P^-1``, e.g. an ill-conditioned Schur factor at parameter
        bounds, does not make the estimate wrong).  Rounding in the near-singular P system can
        still leave the true residual behind the estimate (OCIM2 size: 1.5e-8 where GMRES reports
        1e-12): up to ``max_refinements`` restarts on the true residual (iterative refinement, when
        it is above 1e-8; each to ``rtol ||b|| / ||r||`` of its own right-hand side) close the gap;
        it must end below ``stall_tol`` (1e-7, the round-off floor of that system).  ``rtol`` (default
        the solver's 1e-11) loosens the tolerance for a correction whose size only has to be known
        roughly (a Newton refinement step of a linear model); the refinement and stall thresholds
        follow it."""
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
                # side that is tol ||B|| / ||R|| (OCIM2 size: ~1e-3, 3 iterations instead of 8)
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
        """One GMRES cycle for the block of right-hand sides B (nt, nloc, nrhs) to relative ``tol`` (a scalar
        or one per right-hand side)."""
        nr = B.shape[2]
        beta = np.sqrt(dots(B, [B]))[0]
        safe = np.where(beta > 0, beta, 1.0)
        m = self.max_sweeps
        V = [B / safe]
        Z = []                                          # P^-1 V, kept (x = Z y needs no last block solve)
        tmp = np.empty_like(B)
        H = np.zeros((nr, m + 1, m))
        rel = np.ones(nr)
        for j in range(m):
            Z.append(self._precondition(V[j], transpose))
            W = apply(Z[j])
            for _ in range(2):                          # classical Gram-Schmidt, twice (CGS2: as stable as
                h = dots(W, V[:j + 1])                  # modified GS, one reduction per pass)
                H[:, :j + 1, j] += h.T
                for i in range(j + 1):
                    np.multiply(V[i], h[i], out=tmp)
                    W -= tmp
            hn = np.sqrt(dots(W, [W]))[0]
            H[:, j + 1, j] = hn
            W /= np.where(hn > 0, hn, 1.0)
            V.append(W)
            ys = []
            for r in range(nr):
                e1 = np.zeros(j + 2)
                e1[0] = beta[r]
                y, *_ = np.linalg.lstsq(H[r, :j + 2, :j + 1], e1, rcond=None)
                ys.append(y)
                rel[r] = np.linalg.norm(e1 - H[r, :j + 2, :j + 1] @ y) / safe[r]
            log.debug("structured GMRES %d: max relative residual %.3e", j + 1, rel.max())
            if np.all(rel <= tol) or j == m - 1:
                break
        # x = Z y with the stored Z = P^-1 V: one more basis in memory instead of one more block
        # solve with S for x = P^-1 (V y)
        X = np.zeros_like(B)
        for r in range(nr):
            for i in range(len(ys[r])):
                X[:, :, r] += Z[i][:, :, r] * ys[r][i]
        return X, j + 1

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
        if getattr(self, "_kspobj", None) is not None:
            self._kspobj.destroy()
            self._kspobj = None
        if self.schur is not None:
            self.schur.destroy()
            self.schur = None
        if self._S is not None:
            self._S.destroy()
            self._S = None
