"""Conservative (area- and volume-weighted) binning of a source lat-lon(-depth) grid onto model boxes.

The overlap of a source cell with a model box is separable: latitude overlap measured in
``sin(lat)`` (exact spherical area), longitude overlap in degrees (periodic, any
convention: 0-360 or -180-180, either direction), depth overlap in metres.  With
``W = Wz (x) Wy (x) Wx`` the overlap-volume matrix, a model box gets

    value = sum_s W[b, s] m_s v_s / sum_s W[b, s] m_s        (m_s = 1 where the source has data)

so the overlap-volume-weighted mean of the model field equals the volume-weighted mean of
the observed source cells to round-off when the model boxes cover them (tested), and
``coverage = sum_s W[b, s] m_s / sum_s W[b, s]`` tells which fraction of a box was observed.
``n_obs`` counts source data cells per box, each weighted by the fraction of it inside the box.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEG = np.pi / 180.0


def model_lat_edges(lat_centres):
    lat = np.asarray(lat_centres, dtype=float)
    d = 180.0 / lat.size
    return np.concatenate([lat - d / 2, lat[-1:] + d / 2]).clip(-90, 90)


def model_lon_edges(lon_centres):
    lon = np.asarray(lon_centres, dtype=float)
    d = 360.0 / lon.size
    return np.concatenate([lon - d / 2, lon[-1:] + d / 2])


def _overlap_1d(dst_edges, src_edges):
    """Dense (n_dst, n_src) overlap lengths of intervals, any orientation of either edge array."""
    d = np.asarray(dst_edges, dtype=float)
    s = np.asarray(src_edges, dtype=float)
    dlo, dhi = np.minimum(d[:-1], d[1:]), np.maximum(d[:-1], d[1:])
    slo, shi = np.minimum(s[:-1], s[1:]), np.maximum(s[:-1], s[1:])
    return np.clip(np.minimum(dhi[:, None], shi[None, :]) - np.maximum(dlo[:, None], slo[None, :]), 0.0, None)


def lat_overlap(dst_edges_deg, src_edges_deg):
    """Overlap of latitude bands in ``sin(lat)`` units (proportional to area on the sphere)."""
    return _overlap_1d(np.sin(np.clip(dst_edges_deg, -90, 90) * DEG), np.sin(np.clip(src_edges_deg, -90, 90) * DEG))


def lon_overlap(dst_edges_deg, src_edges_deg):
    """Overlap of longitude intervals in degrees, periodic with period 360."""
    d = np.asarray(dst_edges_deg, dtype=float)
    s = np.asarray(src_edges_deg, dtype=float)
    base = np.min(d)
    s = s - 360.0 * np.floor((np.minimum(s[:-1], s[1:]).min() - base) / 360.0)
    W = np.zeros((d.size - 1, s.size - 1))
    for shift in (-720.0, -360.0, 0.0, 360.0, 720.0):
        W += _overlap_1d(d, s + shift)
    return W


def depth_overlap(dst_edges_m, src_edges_m):
    return _overlap_1d(dst_edges_m, src_edges_m)


@dataclass
class Binned:
    """Result of binning: arrays on the model grid (lat, lon[, depth]) in model axis order."""

    value: np.ndarray      #: binned value (NaN where no source data overlaps)
    coverage: np.ndarray   #: observed fraction of the box overlap measure (0..1)
    n_obs: np.ndarray      #: source data cells per box (fractional, overlap-weighted)
    measure: np.ndarray    #: observed overlap measure (sin-lat x deg x m), the weight behind ``value``


def _apply(Wy, Wx, Wz, arr):
    """Contract arr (src z?, lat, lon) with Wz, Wy, Wx -> (model lat, lon[, z])."""
    if Wz is None:
        t = np.tensordot(arr, Wx, axes=([1], [1]))           # (slat, mlon)
        return Wy @ t                                        # (mlat, mlon)
    t = np.tensordot(arr, Wx, axes=([2], [1]))               # (sz, slat, mlon)
    t = np.tensordot(t, Wy, axes=([1], [1]))                 # (sz, mlon, mlat)
    t = np.tensordot(t, Wz, axes=([0], [1]))                 # (mlon, mlat, mz)
    return np.transpose(t, (1, 0, 2))                        # (mlat, mlon, mz)


def conservative_bin(values, src_lat_edges, src_lon_edges, dst_lat_edges, dst_lon_edges,
                     src_depth_edges=None, dst_depth_edges=None) -> Binned:
    """Bin ``values`` ((depth,) lat, lon; NaN = missing) onto the model cells.

    Returns a :class:`Binned` with arrays (mlat, mlon) or (mlat, mlon, mz).
    """
    v = np.asarray(values, dtype=float)
    Wy = lat_overlap(dst_lat_edges, src_lat_edges)
    Wx = lon_overlap(dst_lon_edges, src_lon_edges)
    Wz = None
    if src_depth_edges is not None:
        Wz = depth_overlap(dst_depth_edges, src_depth_edges)
    m = np.isfinite(v).astype(float)
    vz = np.where(m > 0, v, 0.0)
    num = _apply(Wy, Wx, Wz, vz * m)
    den = _apply(Wy, Wx, Wz, m)
    full = _apply(Wy, Wx, Wz, np.ones_like(m))
    # fraction of each source cell that lies in each model box, for the observation count
    src_size_y = np.abs(np.diff(np.sin(np.clip(src_lat_edges, -90, 90) * DEG)))
    src_size_x = np.abs(np.diff(np.asarray(src_lon_edges, dtype=float)))
    Fy = Wy / np.where(src_size_y > 0, src_size_y, 1.0)[None, :]
    Fx = Wx / np.where(src_size_x > 0, src_size_x, 1.0)[None, :]
    Fz = None
    if Wz is not None:
        src_size_z = np.abs(np.diff(np.asarray(src_depth_edges, dtype=float)))
        Fz = Wz / np.where(src_size_z > 0, src_size_z, 1.0)[None, :]
    n_obs = _apply(Fy, Fx, Fz, m)
    tiny = 1e-14 * max(float(full.max()), 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(den > tiny, num / np.where(den > tiny, den, 1.0), np.nan)
        coverage = np.where(full > tiny, den / np.where(full > tiny, full, 1.0), 0.0)
    return Binned(value=value, coverage=coverage, n_obs=n_obs, measure=den)
