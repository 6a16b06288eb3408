"""CMIP6 ``epc100`` (downward POC flux at 100 m) fields onto the model surface, for the ESM comparison.

Input: a CMIP6 NetCDF file on a regular latitude-longitude grid (the ``gr`` regridded
product, or any file with 1-D ``lat``/``lon``), variable ``epc100`` in mol m^-2 s^-1 with a
time axis.  The monthly or annual records inside the chosen years are averaged (equal
weights per record), converted to mg C m^-2 d^-1 and binned area-conservatively onto the
model surface (no fill: an ESM field is compared where it exists).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .netcdf import read_variable
from .regrid import conservative_bin, model_lat_edges, model_lon_edges
from .units import canonical_units, check_kind, to_model_units


def epc100_climatology(path: str, grid, years=None, variable: str = "epc100", units: str | None = None):
    """Returns dict ``epc100`` (nlat, nlon) mg C m^-2 d^-1 (NaN on land), ``years`` (first, last), ``n_records``."""
    f = read_variable(path, variable, units=units)
    key = canonical_units(f.units, path=path, variable=variable)
    check_kind(key, "areal_flux", path=path, variable=variable, original=f.units)
    if "depth" in f.dims:
        raise InputError(f"expected a 2-D field with a time axis, got dimensions {f.dims}", path=path, variable=variable)
    v = f.values
    if "time" in f.dims:
        t = f.time
        sel = np.ones(t.size, bool)
        if years is not None:
            y0, y1 = min(years), max(years)
            sel = (np.floor(t) >= y0) & (np.floor(t) <= y1)
            if not sel.any():
                raise InputError(f"no records in the years {y0}-{y1} (file covers {t.min():.1f}-{t.max():.1f})",
                                 path=path, variable=variable)
        v = np.nanmean(v[sel], axis=0) if sel.sum() > 1 else v[sel][0]
        span = (float(np.floor(t[sel].min())), float(np.floor(t[sel].max())))
        n = int(sel.sum())
    else:
        span, n = None, 1
    if not np.isfinite(v).any():
        raise InputError("every value is missing", path=path, variable=variable)
    v = to_model_units(v, key, "areal_flux")
    b = conservative_bin(v, f.lat_edges, f.lon_edges, model_lat_edges(grid.lat), model_lon_edges(grid.lon))
    surf = grid.mask[:, :, 0]
    return {"epc100": np.where(surf, b.value, np.nan), "years": span, "n_records": n, "units": "mg C m-2 d-1"}
