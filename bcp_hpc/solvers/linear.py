"""A linear solver around PETSc KSP with a mandatory options prefix.

Default: parallel direct LU with MUMPS (``-<prefix>ksp_type preonly
-<prefix>pc_type lu -<prefix>pc_factor_mat_solver_type mumps``).  Every choice
can be overridden from the command line or a config through PETSc's options
database, e.g. ``-steady_pc_factor_mat_solver_type superlu_dist`` or
``-steady_ksp_type gmres -steady_pc_type hypre``.

The factorization is kept and reused for any number of right-hand sides
(:meth:`solve`, :meth:`solve_many` which uses ``MatMatSolve`` on the factor).
Objects are destroyed explicitly: use the solver as a context manager.

Fill-reducing ordering (``-<prefix>ordering auto|metis|solver``): a direct MUMPS
factorization of a matrix that lives on one process, with at least
``METIS_ABOVE_UNKNOWNS`` unknowns, is ordered by METIS nested dissection computed by the
package (:mod:`bcp_hpc.solvers.ordering`; Debian's MUMPS has no METIS of its own): the
solver factors ``A[p][:, p]`` with MUMPS told to keep that order (``ICNTL(7) = 1``) and maps
right-hand sides and solutions.  ``solver`` leaves the ordering to MUMPS
(``-<prefix>mat_mumps_icntl_7``); ``metis`` asks for it at any size and fails clearly where
it cannot be had (several ranks, no METIS library, not a MUMPS LU).

Stopping rule for iterative paths: ``-<prefix>ksp_rtol`` defaults to 1e-12
relative to ``||b||``; for a steady-state residual ``F = T c - s`` in s^-1
units times concentration this is "relative residual per unit time", i.e. the
remaining tendency is below 1e-12 of the source tendency.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, SolverError
from ..petsc_env import import_petsc4py
from . import ordering
from .base import Solver
from .options import OptionsScope, get_option, ksp_reason

PETSc = import_petsc4py()
log = logging.getLogger(__name__)

DIRECT_DEFAULTS = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
#: MUMPS' working-space margin over its estimate (``ICNTL(14)``, percent) on several processes, where
#: its dynamic scheduling writes into the margin, so that it is resident memory (on one process it is
#: not, and MUMPS' default 20 stays).  With 5 the largest rank's peak fell in the same time, 2 ranks:
#: the iterative path's coarse LU 5.4 % at 2 deg x 48 and 4.1 % at OCIM2 size, the joint model's
#: evaluation 4.8 % at OCIM2 size (docs/solvers.md).  A factor that runs out of space is redone
#: with 50 (:meth:`LinearSolver.setup`).
PARALLEL_WORKSPACE_MARGIN = 5
ITERATIVE_RTOL = 1e-12
#: ``-<prefix>ordering auto`` uses METIS for direct MUMPS factors of at least this many unknowns on
#: one process (a third of AMF's factor flops on the P model's Schur complement at OCIM2 size;
#: docs/solvers.md); small matrices keep MUMPS' own choice
METIS_ABOVE_UNKNOWNS = 20_000
ORDERINGS = ("auto", "metis", "solver")
#: MUMPS INFOG(1) values that more working space (ICNTL(14)) cures
MUMPS_WORKSPACE_ERRORS = (-8, -9, -11, -14, -15, -17, -20)
#: what MUMPS' commonest INFOG(1) errors mean (MUMPS 5.5 user's guide, section 8)
MUMPS_ERRORS = {-5: "not enough memory in the analysis", -6: "the matrix is structurally singular",
                -7: "not enough memory in the analysis", -9: "working space too small",
                -10: "the matrix is numerically singular", -13: "not enough memory to allocate the factors",
                -19: "the memory limit ICNTL(23) is too small", -40: "the matrix is not positive definite"}


def ordering_choice(prefix: str) -> str:
    """``-<prefix>ordering``: auto (default), metis or solver."""
    choice = get_option(prefix, "ordering")
    if choice not in ORDERINGS:
        raise ConfigError(f"-{prefix}ordering {choice}: expected one of {', '.join(ORDERINGS)}")
    return choice


def metis_ordering_expected(prefix: str, A) -> bool:
    """Whether a direct MUMPS :class:`LinearSolver` with ``prefix`` will order ``A`` with METIS
    (for callers that pick other factor settings before creating it)."""
    choice = ordering_choice(prefix)
    if choice == "solver" or A.getComm().getSize() > 1 or not ordering.available():
        return False
    return choice == "metis" or A.getSize()[0] >= METIS_ABOVE_UNKNOWNS


class LinearSolver(Solver):
    """KSP with options prefix ``prefix`` (must end with ``_``) for operator ``A``.

    ``defaults`` (default: MUMPS LU) and ``extra_defaults`` are this solver's options: they give
    way to the user's and are in PETSc's database only while the solver reads them.  On several
    processes they include MUMPS' workspace margin :data:`PARALLEL_WORKSPACE_MARGIN`."""

    def __init__(self, A, prefix: str, comm=None, defaults: dict | None = None, extra_defaults: dict | None = None):
        if not prefix or not prefix.endswith("_"):
            raise ValueError("an options prefix ending with '_' is mandatory (e.g. 'steady_')")
        self.prefix = prefix
        self.A = getattr(A, "matrix", A)
        A = self.A
        comm = comm or A.getComm()
        own = dict(DIRECT_DEFAULTS if defaults is None else defaults)
        if comm.getSize() > 1:
            own["mat_mumps_icntl_14"] = str(PARALLEL_WORKSPACE_MARGIN)
        self.options = OptionsScope(prefix, dict(own, **(extra_defaults or {})))
        self.ksp = PETSc.KSP().create(comm=comm)
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setOperators(A)
        self.ksp.setTolerances(rtol=ITERATIVE_RTOL, atol=0.0, max_it=2000)
        with self.options.inserted():
            self.ksp.setFromOptions()
        self._factored = False
        self.mumps_retries = 0
        self._dense = None            # ((nloc, N, nrhs), B, X): dense matrices of the last block solve
        self.ordering = "solver"      # what orders the factor: "metis" (this package) or "solver"
        self._perm = None             # METIS order: new position -> old index
        self._Ap = None               # A[perm][:, perm] (PETSc, one process)
        self._pmap = None             # (indptr, indices, data_map): A's CSR values -> _Ap's
        self._pattern = None          # A's CSR column indices when the order was computed
        self._pb = self._px = None    # work vectors in METIS order
        self._choose_ordering()

    # -------------------------------------------------------------- ordering
    def _choose_ordering(self):
        choice = ordering_choice(self.prefix)
        if choice == "solver":
            return
        pc = self.ksp.getPC()
        mumps_lu = self.is_direct and pc.getType() == "lu" and pc.getFactorSolverType() == "mumps"
        if choice == "auto":
            if not (mumps_lu and metis_ordering_expected(self.prefix, self.A)):
                return
        elif not mumps_lu:
            raise SolverError(f"-{self.prefix}ordering metis needs a direct MUMPS LU "
                              f"(-{self.prefix}ksp_type preonly -{self.prefix}pc_type lu "
                              f"-{self.prefix}pc_factor_mat_solver_type mumps); this solver is {self.describe()}")
        elif self.A.getComm().getSize() > 1:
            raise SolverError(f"-{self.prefix}ordering metis: PETSc passes an ordering of its caller's to MUMPS only "
                              f"for a matrix on one process, this one is on {self.A.getComm().getSize()}; there "
                              f"MUMPS orders (-{self.prefix}mat_mumps_icntl_7, or -{self.prefix}mat_mumps_icntl_28 2 "
                              "with a MUMPS built with ParMETIS / PT-SCOTCH)")
        t0 = time.perf_counter()
        N = self.A.getSize()[0]
        indptr, indices, values = self.A.getValuesCSR()
        perm = ordering.metis(sp.csr_matrix((values, indices, indptr), shape=(N, N)))
        t1 = time.perf_counter()
        if perm is None:                  # no library, or METIS failed (logged): MUMPS orders
            if choice == "metis":
                raise SolverError(f"-{self.prefix}ordering metis: no METIS library could be loaded "
                                  "(set BCP_METIS_LIBRARY to a libmetis.so of METIS 5)")
            return
        self._perm = perm
        self._pattern = indices
        self._pmap = _permuted_pattern(indptr, indices, perm)
        self._Ap = PETSc.Mat().createAIJ((N, N), csr=self._permuted_csr(indices, values), comm=self.A.getComm())
        self._Ap.assemble()
        self._pb, self._px = self._Ap.createVecs()
        self.ksp.setOperators(self._Ap)
        self.ksp.getPC().setFactorOrdering("natural")     # MUMPS gets the identity: A's METIS order
        self.ordering = "metis"
        log.info("%s: METIS nested-dissection ordering of %d unknowns (%.2f s: METIS %.2f s, reordered copy "
                 "%.2f s)", self.prefix, N, time.perf_counter() - t0, t1 - t0, time.perf_counter() - t1)

    def _permuted_csr(self, cols, values):
        """CSR arrays of ``A[perm][:, perm]`` from ``A``'s CSR column indices and values (the pattern
        must be the one the order was computed for)."""
        indptr, indices, data_map = self._pmap
        if len(cols) != len(self._pattern) or not np.array_equal(cols, self._pattern):
            raise SolverError(f"{self.prefix}: the operator's nonzero pattern changed ({len(values)} entries, "
                              f"the METIS-ordered copy has {len(data_map)}); create a new LinearSolver")
        return indptr, indices, values[data_map]

    def _operator(self):
        return self._Ap if self._Ap is not None else self.A

    # -------------------------------------------------------------- setup
    @property
    def is_direct(self) -> bool:
        return self.ksp.getPC().getType() in ("lu", "cholesky") and self.ksp.getType() == "preonly"

    def _mumps(self):
        pc = self.ksp.getPC()
        if pc.getType() == "lu" and pc.getFactorSolverType() == "mumps":
            return pc.getFactorMatrix()
        return None

    def mumps_memory_mb(self):
        """MUMPS' memory of the last factorization in MB, ``(largest process, all processes)`` (INFOG(21),
        INFOG(22)); None when this is not a MUMPS factor."""
        F = self._mumps() if self._factored else None
        if F is None:
            return None
        return int(F.getMumpsInfog(21)), int(F.getMumpsInfog(22))

    def _mumps_failure(self):
        """MUMPS' INFOG(1) if its last analysis or factorization failed (negative; the same on every
        process), else None.  PETSc does not raise on such a failure: it marks the factor failed, and
        the first solve would only say that the preconditioner's set-up failed."""
        try:
            F = self._mumps()
            info = None if F is None else int(F.getMumpsInfog(1))
        except Exception:  # noqa: BLE001 - no factor yet (the failure was elsewhere)
            return None
        return info if info is not None and info < 0 else None

    def setup(self):
        """Factor (direct) or build the preconditioner; retries MUMPS with more workspace when its
        INFOG(1) says the workspace was too small, and names MUMPS' error otherwise."""
        for attempt in range(4):
            cause = None
            try:
                with self.options.inserted():       # MUMPS reads its ICNTLs at the factorization
                    self.ksp.setUp()
            except PETSc.Error as exc:
                cause = exc
            info = self._mumps_failure()
            if cause is None and info is None:
                self._factored = True
                return
            if info in MUMPS_WORKSPACE_ERRORS and attempt < 3:
                F = self._mumps()
                new = max(2 * F.getMumpsIcntl(14), 50)
                log.warning("MUMPS workspace too small (INFOG(1)=%s): retrying with ICNTL(14)=%d", info, new)
                self.options.set_override("mat_mumps_icntl_14", new)
                with self.options.inserted():
                    self.ksp.setFromOptions()
                self.ksp.reset()
                self.ksp.setOperators(self._operator())
                if self._perm is not None:
                    self.ksp.getPC().setFactorOrdering("natural")
                self.mumps_retries += 1
                continue
            what = f"MUMPS INFOG(1) = {info} ({MUMPS_ERRORS.get(info, 'see the MUMPS manual')})" if info else cause
            raise SolverError(f"factorization/preconditioner setup failed for '{self.prefix}': {what}") from cause

    def refactor(self, A=None):
        """New values in ``A`` (same nonzero pattern; a Mat or a linearisation with ``.matrix``):
        numeric refactorization only."""
        if A is not None:
            self.A = getattr(A, "matrix", A)
        if self._Ap is not None:
            _, cols, values = self.A.getValuesCSR()
            self._Ap.setValuesCSR(*self._permuted_csr(cols, values))
            self._Ap.assemble()
        self.ksp.setOperators(self._operator())
        self._factored = False
        self.setup()

    # -------------------------------------------------------------- solves
    def solve(self, b, x=None, transpose: bool = False):
        if not self._factored:
            self.setup()
        if x is None:
            x = self.A.createVecRight()
        if self._perm is not None:
            # P A P^T (P x) = P b, and (P A P^T)^T = P A^T P^T for the transposed solve
            self._pb.getArray()[:] = b.getArray(readonly=True)[self._perm]
            (self.ksp.solveTranspose if transpose else self.ksp.solve)(self._pb, self._px)
            x.getArray()[self._perm] = self._px.getArray(readonly=True)
        elif transpose:
            self.ksp.solveTranspose(b, x)
        else:
            self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise SolverError(f"linear solve '{self.prefix}' diverged ({ksp_reason(reason)}, "
                              f"{self.ksp.getIterationNumber()} iterations)")
        return x

    def solve_many(self, B_cols):
        """Solve for several right-hand sides (list of Vecs); one ``MatMatSolve`` on the factor when direct."""
        if not self._factored:
            self.setup()
        nrhs = len(B_cols)
        if nrhs == 0:
            return []
        if self.is_direct and nrhs > 1:
            X = self.solve_array(np.column_stack([v.getArray(readonly=True) for v in B_cols]))
            out = []
            for j in range(nrhs):
                x = self.A.createVecRight()
                x.getArray()[:] = X[:, j]
                out.append(x)
            return out
        return [self.solve(b) for b in B_cols]

    def solve_array(self, B, transpose: bool = False):
        """Solve for the columns of ``B``, this rank's rows of the right-hand sides as a NumPy array
        (nloc, nrhs); returns the solutions in the same layout.  On a direct path one
        ``MatMatSolve`` through dense matrices kept between calls, no Vec per column; the returned
        array is only valid until the next call.  ``transpose`` (and Krylov paths): one solve per
        column."""
        if not self._factored:
            self.setup()
        nloc, nrhs = B.shape
        if self.is_direct and nrhs > 1 and not transpose:
            F = self.ksp.getPC().getFactorMatrix()
            Bm, Xm = self._dense_pair(nloc, self.A.getSize()[0], nrhs)
            if self._perm is None:
                Bm.getDenseArray()[:] = B
            else:
                Bm.getDenseArray()[:] = B[self._perm]
            Bm.assemble()
            F.matSolve(Bm, Xm)
            if self._perm is None:
                return Xm.getDenseArray(readonly=True)
            X = np.empty_like(B)
            X[self._perm] = Xm.getDenseArray(readonly=True)
            return X
        out = np.empty_like(B)
        b = self.A.createVecRight()
        x = self.A.createVecRight()
        try:
            for j in range(nrhs):
                b.getArray()[:] = B[:, j]
                self.solve(b, x, transpose=transpose)
                out[:, j] = x.getArray(readonly=True)
        finally:
            b.destroy()
            x.destroy()
        return out

    def _dense_pair(self, nloc: int, N: int, nrhs: int):
        """Dense right-hand-side and solution matrices for ``nrhs`` columns, kept for the next block
        of the same size (an outer Krylov method solves once per iteration; allocating
        them each time cost ~25 ms per call at OCIM2 size)."""
        key = (nloc, N, nrhs)
        if self._dense is not None and self._dense[0] == key:
            return self._dense[1], self._dense[2]
        self._free_dense()
        comm = self.A.getComm()
        pair = []
        for _ in range(2):
            M = PETSc.Mat().createDense(((nloc, N), (None, nrhs)), comm=comm)
            M.setUp()
            M.assemble()
            pair.append(M)
        self._dense = (key, *pair)
        return pair

    def _free_dense(self):
        if self._dense is not None:
            for M in self._dense[1:]:
                M.destroy()
            self._dense = None

    def iterations(self) -> int:
        return self.ksp.getIterationNumber()

    def describe(self) -> str:
        pc = self.ksp.getPC()
        s = f"ksp={self.ksp.getType()} pc={pc.getType()}"
        if pc.getType() in ("lu", "cholesky"):
            s += f" package={pc.getFactorSolverType()}"
        if self.ordering == "metis":
            s += " ordering=metis"
        return s

    # -------------------------------------------------------------- lifetime
    def destroy(self):
        self.options.pop()
        self._free_dense()
        if self.ksp is not None:
            self.ksp.destroy()
            self.ksp = None
        for obj in (self._Ap, self._pb, self._px):
            if obj is not None:
                obj.destroy()
        self._Ap = self._pb = self._px = None



def _permuted_pattern(indptr, indices, perm):
    """CSR pattern of ``A[perm][:, perm]`` and where each of its entries sits in ``A``'s values.

    Returns ``(indptr, indices, data_map)`` with ``values_p = values[data_map]``; explicit
    zeros are kept, so the pattern (and MUMPS' analysis) stays valid for later values."""
    n = len(indptr) - 1
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n, dtype=np.int64)
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    new_rows = inv[rows]
    new_cols = inv[np.asarray(indices, dtype=np.int64)]
    data_map = np.argsort(new_rows * n + new_cols, kind="stable")
    new_indptr = np.zeros(n + 1, dtype=PETSc.IntType)
    np.cumsum(np.bincount(new_rows, minlength=n), out=new_indptr[1:])
    return new_indptr, new_cols[data_map].astype(PETSc.IntType), data_map
