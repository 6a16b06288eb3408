"""Fill of unobserved wet boxes where the model needs a value (documented method).

Method ("nearest-neighbour diffusion within a layer"): in each layer, a wet box without a
value takes the mean of its wet horizontal neighbours that have one (4 neighbours,
periodic in longitude), repeated until the layer is complete; a layer with no value at
all copies the layer above (for the surface: the layer below).  Observed boxes are never
changed.  This is what OCIM-BGC's inpainting does in spirit, without smoothing the data.
It is used only for fields that enter the model equations (phosphate in the uptake term,
temperature, salinity, NPP); observations entering the misfit are never filled: their
unobserved boxes simply carry no weight.
"""
from __future__ import annotations

import numpy as np


def _fill_layer(values, wet, max_sweeps=100000):
    v = values.copy()
    have = np.isfinite(v) & wet
    v[~have] = np.nan
    need = wet & ~have
    if not have.any():
        return v, False
    sweeps = 0
    while need.any():
        sweeps += 1
        s = np.zeros_like(v)
        c = np.zeros_like(v)
        vz = np.where(have, v, 0.0)
        h = have.astype(float)
        for dv, dh in ((np.roll(vz, 1, 1), np.roll(h, 1, 1)), (np.roll(vz, -1, 1), np.roll(h, -1, 1))):
            s += dv
            c += dh
        up_v = np.vstack([vz[1:], np.zeros((1, v.shape[1]))])
        up_h = np.vstack([h[1:], np.zeros((1, v.shape[1]))])
        dn_v = np.vstack([np.zeros((1, v.shape[1])), vz[:-1]])
        dn_h = np.vstack([np.zeros((1, v.shape[1])), h[:-1]])
        s += up_v + dn_v
        c += up_h + dn_h
        new = need & (c > 0)
        if not new.any():
            # wet boxes not connected to any observed box through wet neighbours: use the layer mean
            v[need] = np.nanmean(v[have])
            have |= need
            need[:] = False
            break
        v[new] = s[new] / c[new]
        have |= new
        need &= ~new
        if sweeps > max_sweeps:
            raise RuntimeError("fill did not converge")
    return v, True


def fill_wet(values3d, mask3d):
    """Fill NaN wet boxes of a (nlat, nlon[, nz]) field; returns ``(filled, was_filled)``.

    ``was_filled`` is True where the value is not an observation (binned) but the fill.
    """
    v = np.array(values3d, dtype=float)
    m = np.asarray(mask3d, bool)
    two_d = v.ndim == 2
    if two_d:
        v = v[:, :, None]
        m = m[:, :, None]
    observed = np.isfinite(v) & m
    out = np.full(v.shape, np.nan)
    ok = np.zeros(v.shape[2], bool)
    for k in range(v.shape[2]):
        out[:, :, k], ok[k] = _fill_layer(v[:, :, k], m[:, :, k])
    for k in range(1, v.shape[2]):
        if not ok[k] and ok[k - 1]:
            out[:, :, k] = np.where(m[:, :, k], out[:, :, k - 1], np.nan)
            ok[k] = True
    for k in range(v.shape[2] - 2, -1, -1):
        if not ok[k] and ok[k + 1]:
            # a deeper layer is narrower: copy where it is wet, then complete the layer by the fill
            out[:, :, k], ok[k] = _fill_layer(np.where(m[:, :, k + 1], out[:, :, k + 1], np.nan), m[:, :, k])
    out[~m] = np.nan
    filled = m & ~observed
    if two_d:
        return out[:, :, 0], filled[:, :, 0]
    return out, filled
