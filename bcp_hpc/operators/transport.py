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

import numpy as np
import scipy.sparse as sp

from ..grid.grid import EARTH_RADIUS_M, Grid


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


def _wet_faces(grid: Grid, family: str, rows):
    """The wet faces of one family that touch boxes ``rows`` (natural indices, ascending or not).

    Returns ``(j, i, k, a, b)``: each face's index in the family's face array (``e``: (nlat, nlon, nz),
    east face of box (j, i, k); ``n``: (nlat-1, nlon, nz), north face; ``t``: (nlat, nlon, nz-1), the
    interface between layers k and k+1) and its two boxes (``a`` loses what flows in the positive
    direction, ``b`` gains it; see :func:`_face_pairs`), faces in the C order of the face array.  Only
    the faces of ``rows`` are made: no array of the whole 3-D grid."""
    nlat, nlon, nz = grid.shape
    rows = np.asarray(rows, dtype=np.int64)
    j = grid.box_ilat[rows].astype(np.int64)
    i = grid.box_ilon[rows].astype(np.int64)
    k = grid.box_k[rows].astype(np.int64)
    if family == "e":                # the box's own east face, and its west neighbour's
        shape = (nlat, nlon, nz)
        cand = (j, i, k), (j, (i - 1) % nlon, k)
    elif family == "n":              # its north face, and its south neighbour's
        shape = (nlat - 1, nlon, nz)
        cand = (j[j < nlat - 1], i[j < nlat - 1], k[j < nlat - 1]), (j[j > 0] - 1, i[j > 0], k[j > 0])
    else:                            # the interface below it, and the one above it
        shape = (nlat, nlon, nz - 1)
        cand = (j[k < nz - 1], i[k < nz - 1], k[k < nz - 1]), (j[k > 0], i[k > 0], k[k > 0] - 1)
    del j, i, k
    flat = np.unique(np.concatenate([np.ravel_multi_index(c, shape) for c in cand]))
    fj, fi, fk = np.unravel_index(flat, shape)
    del flat
    idx = grid.wet_index3d
    if family == "e":
        a, b = idx[fj, fi, fk], idx[fj, (fi + 1) % nlon, fk]
    elif family == "n":
        a, b = idx[fj, fi, fk], idx[fj + 1, fi, fk]
    else:
        a, b = idx[fj, fi, fk + 1], idx[fj, fi, fk]
    wet = (a >= 0) & (b >= 0)
    return fj[wet], fi[wet], fk[wet], a[wet], b[wet]


def advection_diffusion(grid: Grid, U, V, W, kappa_h, kappa_v, rows=None) -> sp.csr_matrix:
    """Assemble ``T`` (s^-1, natural order) from face fluxes (m^3 s^-1) and diffusivities (m^2 s^-1).

    ``kappa_h`` is a scalar; ``kappa_v`` a scalar or an array broadcastable to the
    vertical interfaces ``(nlat, nlon, nz-1)``.  ``U``, ``V``, ``W`` and ``kappa_v`` may also be functions
    of face indices ``(fj, fi, fk)`` returning the values at those faces.  With ``rows`` (natural indices)
    only those rows are assembled (the others stay empty; the matrix keeps its n x n shape): a rank
    builds its own rows and never the whole operator, and its temporaries are those of its own faces.
    They equal the same rows of the whole ``T`` bit for bit.
    """
    nlat, nlon, nz = grid.shape
    if rows is None:
        rows = np.arange(grid.nwet)
    wanted = np.zeros(grid.nwet, dtype=bool)
    wanted[np.asarray(rows, dtype=np.int64)] = True
    vol = grid.box_volume
    kappa_h = float(kappa_h)
    dy = EARTH_RADIUS_M * np.deg2rad(180.0 / nlat)
    dz = grid.dz

    # face conductances K * area / distance (m^3 s^-1), at the faces only: east faces dy dz / zonal
    # width at the centres, north faces zonal width at the face x dz / dy, interfaces area / centre distance
    def conductance(family, fj, fi, fk):
        if family == "e":
            return kappa_h * (dy * dz[fk]) / (grid.area2d / dy)[fj, fi]
        if family == "n":
            lat_f = np.deg2rad(0.5 * (grid.lat[:-1] + grid.lat[1:]))
            dx_f = EARTH_RADIUS_M * np.cos(lat_f) * np.deg2rad(360.0 / nlon)
            return kappa_h * (dx_f[fj] * dz[fk]) / dy
        if callable(kappa_v):
            kv = kappa_v(fj, fi, fk)
        else:
            kv = np.broadcast_to(kappa_v, (nlat, nlon, nz - 1))[fj, fi, fk]
        return kv * grid.area2d[fj, fi] / (0.5 * (dz[:-1] + dz[1:]))[fk]

    families = (("e", U), ("n", V), ("t", W))
    faces = {}
    nnz = 0
    for family, _ in families:
        faces[family] = _wet_faces(grid, family, rows)
        a, b = faces[family][3:]
        nnz += 2 * int(wanted[a].sum()) + 2 * int(wanted[b].sum())
    # every entry written once into preallocated arrays, in the order of a list-and-concatenate
    # assembly (the order decides how duplicates are summed, so the rows of any rank equal the whole
    # operator's bit for bit)
    itype = np.int32 if grid.nwet < 2**31 - 1 else np.int64
    r = np.empty(nnz, itype)
    c = np.empty(nnz, itype)
    v = np.empty(nnz)
    pos = 0
    for family, Q in families:
        fj, fi, fk, a, b = faces.pop(family)
        Q = Q(fj, fi, fk) if callable(Q) else np.asarray(Q)[fj, fi, fk]
        G = conductance(family, fj, fi, fk)
        del fj, fi, fk
        ra, rb = wanted[a], wanted[b]
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
