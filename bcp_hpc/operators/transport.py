"""Finite-volume advection-diffusion operator ``T`` (s^-1) from face fluxes and diffusivities.

Convention (spec §1.3): ``dc/dt + T c = s``, so ``T`` is the *divergence* form.
Face volume fluxes (m^3 s^-1) on a ``(nlat, nlon, nz)`` grid:

* ``U[j, i, k]``: eastward, from box (j, i, k) to (j, i+1 mod nlon, k) (periodic in longitude);
* ``V[j, i, k]`` (``nlat-1`` rows): northward, from (j, i, k) to (j+1, i, k);
* ``W[j, i, k]`` (``nz-1`` interfaces): upward, from (j, i, k+1) to (j, i, k).

Advection is first-order upwind (monotone, exactly conservative); diffusion uses
face conductances ``K * area / distance``.  ``1^T V T = 0`` holds for any fluxes
(telescoping); ``T 1 = 0`` holds iff the fluxes are divergence-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..grid.grid import EARTH_RADIUS_M, Grid


@dataclass
class FaceGeometry:
    """Areas (m^2) and centre distances (m) of the three face families."""

    area_e: np.ndarray
    dist_e: np.ndarray
    area_n: np.ndarray
    dist_n: np.ndarray
    area_t: np.ndarray
    dist_t: np.ndarray


def face_geometry(grid: Grid) -> FaceGeometry:
    nlat, nlon, nz = grid.shape
    dlat = np.deg2rad(180.0 / nlat)
    dlon = np.deg2rad(360.0 / nlon)
    dy = EARTH_RADIUS_M * dlat
    dx_c = grid.area2d / dy  # (nlat, nlon) zonal width at box centres
    lat_f = np.deg2rad(0.5 * (grid.lat[:-1] + grid.lat[1:]))
    dx_f = EARTH_RADIUS_M * np.cos(lat_f) * dlon
    dz = grid.dz
    area_e = dy * dz[None, None, :] * np.ones((nlat, nlon, 1))
    dist_e = np.repeat(dx_c[:, :, None], nz, axis=2)
    area_n = dx_f[:, None, None] * dz[None, None, :] * np.ones((1, nlon, 1))
    dist_n = np.full(area_n.shape, dy)
    area_t = np.repeat(grid.area2d[:, :, None], nz - 1, axis=2)
    dist_t = np.broadcast_to(0.5 * (dz[:-1] + dz[1:])[None, None, :], area_t.shape).copy()
    return FaceGeometry(area_e, dist_e, area_n, dist_n, area_t, dist_t)


def _face_pairs(grid: Grid):
    """Natural indices (a, b) of the two boxes of every face, and the wet-face masks."""
    nlat, nlon, nz = grid.shape
    idx = grid.wet_index3d
    a_e = idx
    b_e = np.roll(idx, -1, axis=1)
    a_n = idx[:-1]
    b_n = idx[1:]
    a_t = idx[:, :, 1:]  # below
    b_t = idx[:, :, :-1]  # above
    return (a_e, b_e), (a_n, b_n), (a_t, b_t)


def divergence(grid: Grid, U, V, W) -> np.ndarray:
    """Net volume outflow (m^3 s^-1) of every wet box (natural order)."""
    (a_e, b_e), (a_n, b_n), (a_t, b_t) = _face_pairs(grid)
    div = np.zeros(grid.nwet)
    for (a, b), Q in (((a_e, b_e), U), ((a_n, b_n), V), ((a_t, b_t), W)):
        m = (a >= 0) & (b >= 0)
        np.add.at(div, a[m], Q[m])
        np.add.at(div, b[m], -Q[m])
        dry = ~m & (Q != 0)
        if np.any(dry):
            raise ValueError(f"{np.count_nonzero(dry)} non-zero fluxes through faces touching land")
    return div


def advection_diffusion(grid: Grid, U, V, W, kappa_h, kappa_v, rows=None) -> sp.csr_matrix:
    """Assemble ``T`` (s^-1, natural order) from face fluxes (m^3 s^-1) and diffusivities (m^2 s^-1).

    ``kappa_h`` is a scalar; ``kappa_v`` a scalar or an array broadcastable to the
    vertical interfaces ``(nlat, nlon, nz-1)``.  With ``rows`` (natural indices) only those rows
    are assembled (the others stay empty; the matrix keeps its n x n shape): a rank builds its own
    rows and never the whole operator.  They equal the same rows of the whole ``T`` bit for bit.
    """
    geo = face_geometry(grid)
    (a_e, b_e), (a_n, b_n), (a_t, b_t) = _face_pairs(grid)
    vol = grid.box_volume
    wanted = None
    if rows is not None:
        wanted = np.zeros(grid.nwet, dtype=bool)
        wanted[np.asarray(rows, dtype=np.int64)] = True
    kappa_h = float(kappa_h)
    families = ((a_e, b_e, U, lambda: kappa_h * geo.area_e / geo.dist_e),
                (a_n, b_n, V, lambda: kappa_h * geo.area_n / geo.dist_n),
                (a_t, b_t, W, lambda: np.broadcast_to(kappa_v, geo.area_t.shape) * geo.area_t / geo.dist_t))

    def faces(a, b):
        """The wet faces of a family (only those of the wanted boxes: the temporaries are the rank's share)
        and, per face, whether its rows a and b are wanted."""
        m = (a >= 0) & (b >= 0)
        if wanted is not None:
            m &= wanted[np.maximum(a, 0)] | wanted[np.maximum(b, 0)]
        a, b = a[m], b[m]
        ra = np.ones(a.size, bool) if wanted is None else wanted[a]
        rb = np.ones(b.size, bool) if wanted is None else wanted[b]
        return m, a, b, ra, rb

    # every entry written once into preallocated arrays, in the order of a list-and-concatenate
    # assembly (the order decides how duplicates are summed, so the rows of any rank equal the whole
    # operator's bit for bit)
    nnz = 0
    for a, b, _, _ in families:
        _, _, _, ra, rb = faces(a, b)
        nnz += 2 * int(ra.sum()) + 2 * int(rb.sum())
    itype = np.int32 if grid.nwet < 2**31 - 1 else np.int64
    r = np.empty(nnz, itype)
    c = np.empty(nnz, itype)
    v = np.empty(nnz)
    pos = 0
    for a, b, Q, conductance in families:
        m, a, b, ra, rb = faces(a, b)
        Q = np.asarray(Q)[m]
        G = conductance()[m]
        qp = np.maximum(Q, 0.0)
        qm = np.minimum(Q, 0.0)
        del Q
        # box a loses qp*c_a + qm*c_b ; box b gains it ; diffusion G (c_a - c_b) from a to b
        for rws, cls, val, sel in ((a, a, (qp + G) / vol[a], ra), (a, b, (qm - G) / vol[a], ra),
                                   (b, a, (-qp - G) / vol[b], rb), (b, b, (-qm + G) / vol[b], rb)):
            k = int(sel.sum())
            r[pos:pos + k] = rws[sel]
            c[pos:pos + k] = cls[sel]
            v[pos:pos + k] = val[sel]
            pos += k
    T = sp.csr_matrix((v, (r, c)), shape=(grid.nwet, grid.nwet))
    T.sum_duplicates()
    T.eliminate_zeros()
    return T


def conservation_defects(T, volume) -> dict:
    """Relative defects of ``T 1 = 0`` (no spurious sources) and ``1^T V T = 0`` (mass conservation).

    Both are normalised by the typical row scale ``max |diag(T)|``.
    """
    T = sp.csr_matrix(T)
    scale = float(np.max(np.abs(T.diagonal()))) or 1.0
    ones = np.ones(T.shape[0])
    row = T @ ones
    col = (volume @ T) / volume
    return {"row_sum_rel": float(np.max(np.abs(row)) / scale), "volume_column_sum_rel": float(np.max(np.abs(col)) / scale)}


def distributed_conservation_defects(Tp, dgrid) -> dict:
    """:func:`conservation_defects` of a distributed PETSc ``T`` (``T 1`` and ``T^T V`` applied in parallel:
    no rank needs the whole operator)."""
    grid = dgrid.grid
    vol = dgrid.vec_from_natural([grid.box_volume])
    ones = vol.duplicate()
    ones.set(1.0)
    col = Tp.createVecLeft()
    Tp.multTranspose(vol, col)
    col.pointwiseDivide(col, vol)
    row = Tp.createVecLeft()
    Tp.mult(ones, row)
    diag = Tp.getDiagonal()
    scale = diag.norm(3) or 1.0  # NORM_INFINITY
    defects = {"row_sum_rel": row.norm(3) / scale, "volume_column_sum_rel": col.norm(3) / scale}
    for v in (vol, ones, col, row, diag):
        v.destroy()
    return defects
