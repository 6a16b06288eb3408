"""The protocol every solver of ``F_u`` follows, whatever its path.

:class:`~bcp_hpc.solvers.steady.SteadyState` and the inversion talk to a solver only through
these methods: a direct LU (:class:`~.linear.LinearSolver`), the structured Schur path, the
block-triangular path and the two-level iterative path all implement them.
"""
from __future__ import annotations

import abc

from ..errors import SolverError


class Solver(abc.ABC):
    """A factorization or preconditioner of one operator, kept for many right-hand sides."""

    #: whether ``solve(..., transpose=True)`` works (the adjoint Hessian needs it)
    supports_transpose = True
    #: whether ``solve(b, rtol=...)`` takes a looser tolerance (Krylov paths)
    accepts_rtol = False
    #: right-hand sides per block solve preferred by the path (0: all at once)
    rhs_block = 0
    #: largest true relative residual ``||b - A x|| / ||b||`` of the last solve, when the path checked it
    verified_residual = None

    @abc.abstractmethod
    def solve(self, b, x=None, transpose: bool = False):
        """``A x = b`` (``A^T x = b`` with ``transpose``); returns ``x`` (a new Vec unless given)."""

    def solve_transpose(self, b, x=None):
        if not self.supports_transpose:
            raise SolverError(f"{self.describe()}: no transposed solve")
        return self.solve(b, x, transpose=True)

    def solve_many(self, B_cols):
        """Solutions for a list of right-hand-side Vecs (paths with block solves override this)."""
        return [self.solve(b) for b in B_cols]

    @abc.abstractmethod
    def refactor(self, operator):
        """New values of the operator (same nonzero pattern): refactor, keeping the symbolic work."""

    @abc.abstractmethod
    def destroy(self):
        """Free every PETSc object the solver owns."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line saying what the solver is (path, packages, ordering)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False
