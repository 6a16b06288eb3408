"""Ideal age: ``T a = 1`` in the interior with ``a = 0`` at the surface (restored with a 1-day time scale)."""
from __future__ import annotations

import numpy as np

from ..petsc_env import import_petsc4py
from ..solvers.linear import LinearSolver

PETSc = import_petsc4py()
SECONDS_PER_YEAR = 365.0 * 86400.0


def ideal_age(dgrid, T, restore_s: float = 86400.0, prefix: str = "age_") -> np.ndarray:
    """Ideal age (years), natural order, gathered on every rank.  ``T`` is the distributed PETSc operator."""
    grid = dgrid.grid
    surf = (grid.box_k == 0).astype(float)
    A = T.duplicate(copy=True)
    d = dgrid.vec_from_natural([surf / restore_s])
    A.setDiagonal(d, addv=PETSc.InsertMode.ADD_VALUES)
    b = dgrid.vec_from_natural([(1.0 - surf)])
    with LinearSolver(A, prefix) as s:
        x = s.solve(b)
        age = dgrid.natural_from_vec(x)[0] / SECONDS_PER_YEAR
        x.destroy()
    for o in (A, d, b):
        o.destroy()
    return age


def age_summary(grid, age: np.ndarray) -> dict:
    """Volume-weighted ideal-age statistics (years) used to judge whether a circulation looks like an ocean."""
    V = grid.box_volume
    lat = grid.box_lat
    z = grid.box_zt

    def mean(sel):
        return float((age * V)[sel].sum() / V[sel].sum()) if np.any(sel) else float("nan")

    out = {"mean_below_1000m": mean(z > 1000), "max": float(age.max())}
    mid = (z > 1500) & (z < 3500)
    if "PAC" in grid.basins and "ATL" in grid.basins:
        pac = grid.basin_vector("PAC")
        atl = grid.basin_vector("ATL")
        out["north_pacific_1500_3500m"] = mean(pac & (lat > 20) & (lat < 50) & mid)
        out["north_atlantic_1500_3500m"] = mean(atl & (lat > 20) & (lat < 50) & mid)
    out["southern_ocean_1500_3500m"] = mean((lat < -50) & mid)
    return out
