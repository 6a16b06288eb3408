"""Export by the adjoint method (spec §6.3): where the molecules of a dissolved pool made in the
euphotic zone are respired."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..solvers.linear import LinearSolver


def export_probability(dgrid, T, loss_rate: np.ndarray, prefix: str = "export_") -> np.ndarray:
    """Adjoint export field ``xi = V^-1 (T + K)^-T V K Omega``: the probability that a molecule of a
    dissolved pool with loss rate ``K`` (s^-1, n-vector) made in box i is respired below the
    euphotic zone.  One transposed solve on ``T + K`` (PETSc options under ``prefix``)."""
    grid = dgrid.grid
    V = grid.box_volume
    omega = (~grid.euphotic).astype(float)
    A = dgrid.matrix_from_scipy(sp.csr_matrix(T) + sp.diags(loss_rate))
    rhs = dgrid.vec_from_natural([V * loss_rate * omega])
    solver = LinearSolver(A, prefix)
    try:
        solver.setup()
        y = solver.solve(rhs, transpose=True)
        xi = dgrid.natural_from_vec(y, 1)[0] / V
        y.destroy()
    finally:
        solver.destroy()
        rhs.destroy()
        A.destroy()
    return xi
