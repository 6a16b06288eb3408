"""A linear solver around PETSc KSP with a mandatory options prefix.

Default: parallel direct LU with MUMPS (``-<prefix>ksp_type preonly
-<prefix>pc_type lu -<prefix>pc_factor_mat_solver_type mumps``).  Every choice
can be overridden from the command line or a config through PETSc's options
database, e.g. ``-steady_pc_factor_mat_solver_type superlu_dist`` or
``-steady_ksp_type gmres -steady_pc_type hypre``.

The factorization is kept and reused for any number of right-hand sides
(:meth:`solve`, :meth:`solve_many` which uses ``MatMatSolve`` on the factor).
Objects are destroyed explicitly: use the solver as a context manager.

Stopping rule for iterative paths: ``-<prefix>ksp_rtol`` defaults to 1e-12
relative to ``||b||``; for a steady-state residual ``F = T c - s`` in s^-1
units times concentration this is "relative residual per unit time", i.e. the
remaining tendency is below 1e-12 of the source tendency.
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import SolverError
from ..petsc_env import import_petsc4py

PETSc = import_petsc4py()
log = logging.getLogger(__name__)

DIRECT_DEFAULTS = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
ITERATIVE_RTOL = 1e-12


def set_default_options(prefix: str, defaults: dict):
    """Put defaults in the options database without overriding what the user gave."""
    opts = PETSc.Options()
    for k, v in defaults.items():
        if not opts.hasName(prefix + k):
            opts.setValue(prefix + k, v)


class LinearSolver:
    """KSP with options prefix ``prefix`` (must end with ``_``) for operator ``A``."""

    def __init__(self, A, prefix: str, comm=None, defaults: dict | None = None):
        if not prefix or not prefix.endswith("_"):
            raise ValueError("an options prefix ending with '_' is mandatory (e.g. 'steady_')")
        self.prefix = prefix
        self.A = A
        set_default_options(prefix, DIRECT_DEFAULTS if defaults is None else defaults)
        self.ksp = PETSc.KSP().create(comm=comm or A.getComm())
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setOperators(A)
        self.ksp.setTolerances(rtol=ITERATIVE_RTOL, atol=0.0, max_it=2000)
        self.ksp.setFromOptions()
        self._factored = False
        self.mumps_retries = 0
        self._dense = None            # ((nloc, N, nrhs), B, X): dense matrices of the last block solve

    # -------------------------------------------------------------- setup
    @property
    def is_direct(self) -> bool:
        return self.ksp.getPC().getType() in ("lu", "cholesky") and self.ksp.getType() == "preonly"

    def _mumps(self):
        pc = self.ksp.getPC()
        if pc.getType() == "lu" and pc.getFactorSolverType() == "mumps":
            return pc.getFactorMatrix()
        return None

    def setup(self):
        """Factor (direct) or build the preconditioner; retries MUMPS with more workspace on INFOG(1) = -9."""
        for attempt in range(4):
            try:
                self.ksp.setUp()
                self._factored = True
                return
            except PETSc.Error as exc:
                F = self._mumps()
                info = None
                if F is not None:
                    try:
                        info = F.getMumpsInfog(1)
                    except Exception:  # noqa: BLE001
                        info = None
                if info in (-8, -9, -11, -14, -15, -17, -20) and attempt < 3:
                    icntl14 = F.getMumpsIcntl(14)
                    new = max(2 * icntl14, 50)
                    log.warning("MUMPS workspace too small (INFOG(1)=%s): retrying with ICNTL(14)=%d", info, new)
                    PETSc.Options().setValue(self.prefix + "mat_mumps_icntl_14", new)
                    self.ksp.setFromOptions()
                    self.ksp.reset()
                    self.ksp.setOperators(self.A)
                    self.mumps_retries += 1
                    continue
                raise SolverError(f"factorization/preconditioner setup failed for '{self.prefix}': {exc}") from exc

    def refactor(self, A=None):
        """New values in ``A`` (same nonzero pattern): numeric refactorization only."""
        if A is not None:
            self.A = A
        self.ksp.setOperators(self.A)
        self._factored = False
        self.setup()

    # -------------------------------------------------------------- solves
    def solve(self, b, x=None, transpose: bool = False):
        if not self._factored:
            self.setup()
        if x is None:
            x = self.A.createVecRight()
        if transpose:
            self.ksp.solveTranspose(b, x)
        else:
            self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise SolverError(f"linear solve '{self.prefix}' diverged (KSPConvergedReason {reason}, "
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
            Bm.getDenseArray()[:] = B
            Bm.assemble()
            F.matSolve(Bm, Xm)
            return Xm.getDenseArray(readonly=True)
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
        return s

    # -------------------------------------------------------------- lifetime
    def destroy(self):
        self._free_dense()
        if self.ksp is not None:
            self.ksp.destroy()
            self.ksp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False
