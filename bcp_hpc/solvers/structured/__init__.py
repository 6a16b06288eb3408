"""Structured steady-state solver: column-local elimination + Schur complement + outer correction.

For models whose particle tracers (and fast-decaying dissolved pools declared with
``Tracer.eliminate``) couple to the rest only through *diagonal* (local) blocks, the
Jacobian is split into kept fields K and eliminated fields E.  With ``C_E`` the
column-local part of ``J_EE`` (exact for particles, whose operator is column-local; for a
fast pool like labile DOP the horizontal transport is left out):

    S = J_KK - J_KE C_E^-1 J_EK        (assembled, factored once with MUMPS)

``C_E^-1`` is computed as dense per-water-column inverses (every column lives on one rank,
so this needs no communication).  The block-LU solve with ``C_E`` in place of ``J_EE`` is a
right preconditioner ``P`` for flexible GMRES on the full Jacobian, run in lockstep for all
right-hand sides (each preconditioner application is one ``MatMatSolve`` with ``S``), to
``||B - J X|| <= rtol ||B||`` (rtol 1e-11, ``-<prefix>outer_rtol``; the true residual must be
below 1e-7, the round-off floor of the near-singular P system).

Modules: :mod:`.columns` (water-column bookkeeping, column inverses), :mod:`.kept` (the water
columns of fast pools kept exactly in S, ``-<prefix>keep_ratio``), :mod:`.schur` (assembly of S),
:mod:`.mumps` (settings of large Schur factors), :mod:`.krylov` (the block flexible GMRES),
:mod:`.solver` (the solver that ties them together).

``-<prefix>eliminate_particles 0`` keeps particle tracers in ``S`` as well.  Enable with
``-steady_solver structured`` (or ``SteadyState(..., structured=True)``).  For the P model the
factorization is of a 2n system instead of 4n (plus the kept polar columns).
"""
from .solver import StructuredSolver

__all__ = ["StructuredSolver"]
