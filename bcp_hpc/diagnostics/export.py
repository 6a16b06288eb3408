"""Export by the adjoint method (spec §6.3): where the molecules of a dissolved pool made in the
euphotic zone are respired."""
from __future__ import annotations

import numpy as np

from ..grid.distributed import LocalDiagonal
from ..solvers.linear import LinearSolver


def export_probability(dgrid, T_rows, loss_local: np.ndarray, prefix: str = "export_", root: int | None = 0):
    """Adjoint export field ``xi = V^-1 (T + K)^-T V K Omega``: the probability that a molecule of a
    dissolved pool with loss rate ``K`` (s^-1) made in box i is respired below the euphotic zone.

    One transposed solve on ``T + K`` (PETSc options under ``prefix``), collective: every rank passes
    its rows of ``T`` (natural columns, as :attr:`~bcp_hpc.models.system.ModelSystem.T`) and ``K`` at
    its own boxes (local order, :attr:`~bcp_hpc.grid.distributed.DistributedGrid.local_natural`).
    Returns the natural-order n-vector on rank ``root`` only (None elsewhere), or on every rank with
    ``root=None``."""
    grid = dgrid.grid
    loc = dgrid.local_natural
    loss_local = np.asarray(loss_local, dtype=float)
    V = grid.box_volume[loc]
    A = dgrid.matrix_from_blocks({(0, 0): [T_rows, LocalDiagonal(loss_local)]}, 1)
    rhs = dgrid.create_vec(1)
    rhs.getArray()[:] = V * loss_local * (grid.box_k[loc] >= grid.n_euphotic_layers)
    solver = LinearSolver(A, prefix)
    y = None
    try:
        solver.setup()
        y = solver.solve(rhs, transpose=True)
        xi = dgrid.natural_from_vec(y, 1, root=root)
    finally:
        if y is not None:
            y.destroy()
        solver.destroy()
        rhs.destroy()
        A.destroy()
    return None if xi is None else xi[0] / grid.box_volume
