"""Particle-flux-divergence operators (spec §1.5-1.6): column-local, exactly conservative.

In each column the downward flux through the *bottom* face of box k is upwind,
``Phi = s * C_k`` with speed ``s``; no flux crosses the sea surface or the sea
floor, so what reaches the deepest wet box is remineralised there (no burial).
The operator ``F`` (s^-1) is the flux divergence per unit volume; it is lower
bidiagonal inside each column (natural ordering interleaves columns, but every
entry couples two boxes of the same column).  ``1^T V F = 0`` exactly.

* Martin curve (POP, POC): ``s = (kappa_p / b) z_bottom`` (m s^-1), giving
  ``Phi ~ z^-b``.  ``F`` is proportional to ``1/b`` column by column:
  ``dF/db = -F/b``, ``d2F/db2 = 2F/b^2``.
* PIC: constant speed ``s = kappa_pic * d``: ``dF/dd = F/d``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..grid.grid import Grid
from .rows import expand_rows


def _below_index(grid: Grid) -> np.ndarray:
    """Natural index of the wet box below each box, or -1 at the column bottom."""
    nlat, nlon, nz = grid.shape
    k = grid.box_k
    below = -np.ones(grid.nwet, dtype=np.int64)
    has = k < nz - 1
    cand = grid.wet_index3d[grid.box_ilat[has], grid.box_ilon[has], np.minimum(k[has] + 1, nz - 1)]
    below[np.flatnonzero(has)] = cand
    return below


def flux_divergence(grid: Grid, speed_bottom: np.ndarray, rows=None) -> sp.csr_matrix:
    """``F`` (s^-1) for downward speeds (m s^-1) on the bottom face of every box (natural order): all
    rows, or only rows ``rows`` (natural indices; the others empty), made from those rows' boxes and
    the boxes above them, equal to the same rows of the whole ``F`` bit for bit."""
    n = grid.nwet
    rows = np.arange(n) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
    nz = grid.shape[2]
    j, i, k = grid.box_ilat[rows], grid.box_ilon[rows], grid.box_k[rows]
    idx = grid.wet_index3d
    below = np.where(k < nz - 1, idx[j, i, np.minimum(k + 1, nz - 1)], -1)
    above = np.where(k > 0, idx[j, i, np.maximum(k - 1, 0)], -1)
    dz = grid.dz[k]
    # a row holds its own outflow (diagonal) and the inflow from the box above (whose bottom face it is)
    diag = np.where(below >= 0, np.asarray(speed_bottom)[rows], 0.0) / dz
    has = np.flatnonzero(above >= 0)
    r = np.concatenate([np.arange(rows.size), has])
    c = np.concatenate([rows, above[has]])
    vals = np.concatenate([diag, -np.asarray(speed_bottom)[above[has]] / dz[has]])
    F = sp.csr_matrix((vals, (r, c)), shape=(rows.size, n))
    F.eliminate_zeros()
    return expand_rows(F, rows, n)


def martin_operator(grid: Grid, kappa_p: float, b, rows=None) -> sp.csr_matrix:
    """Martin-curve particle operator (s^-1); ``b`` scalar or n-vector (constant within each column);
    all rows, or only ``rows`` (see :func:`flux_divergence`).

    ``kappa_p``: particle remineralisation rate (s^-1).
    """
    b = np.broadcast_to(np.asarray(b, dtype=float), (grid.nwet,))
    zbot = grid.box_zw + grid.box_dz
    return flux_divergence(grid, kappa_p / b * zbot, rows=rows)


def martin_operator_db(grid: Grid, kappa_p: float, b, order: int = 1) -> sp.csr_matrix:
    """Derivative of :func:`martin_operator` with respect to ``b`` (order 1 or 2), uniform b per column."""
    F = martin_operator(grid, kappa_p, b)
    bb = np.broadcast_to(np.asarray(b, dtype=float), (grid.nwet,))
    if order == 1:
        return sp.diags(-1.0 / bb) @ F
    if order == 2:
        return sp.diags(2.0 / bb ** 2) @ F
    raise ValueError("order must be 1 or 2")


def pic_operator(grid: Grid, kappa_pic: float, d: float, rows=None) -> sp.csr_matrix:
    """Constant-speed PIC operator (s^-1): speed ``kappa_pic * d`` (m s^-1), e-folding dissolution length
    ``d`` (m); all rows, or only ``rows`` (see :func:`flux_divergence`)."""
    return flux_divergence(grid, np.full(grid.nwet, kappa_pic * d), rows=rows)


def flux_through_depth_index(grid: Grid, speed_bottom: np.ndarray, conc: np.ndarray, k_face: int) -> np.ndarray:
    """Downward flux (mmol m^-2 s^-1 if ``conc`` in mmol m^-3) through the bottom of layer ``k_face`` per box of that layer."""
    below = _below_index(grid)
    sel = (grid.box_k == k_face)
    return np.where(below[sel] >= 0, speed_bottom[sel] * conc[sel], 0.0)
