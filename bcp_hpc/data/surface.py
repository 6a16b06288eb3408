"""Surface forcing of the carbon and oxygen cycles onto the model surface: piston velocity, sea-level
pressure, virtual freshwater flux (spec §3.3-3.4).

A 2-D NetCDF field (any regular lat/lon grid; a time axis is averaged) is binned area-conservatively
onto the model's surface columns, converted to model units and filled in the wet columns the source
does not cover (the nearest-neighbour fill of :mod:`.fill`, like the code's inpainting):

* ``piston_velocity``: gas transfer velocity at Schmidt number 660, m s-1 (accepts m s-1, cm h-1);
* ``sea_level_pressure``: atm (accepts atm, Pa, hPa/mbar);
* ``pme``: precipitation minus evaporation as the model uses it, per second of the surface layer
  (s-1): a freshwater flux in m s-1, kg m-2 s-1 or mm d-1 is divided by the surface layer's thickness.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from .fill import fill_wet
from .netcdf import read_variable
from .regrid import conservative_bin, model_lat_edges, model_lon_edges

#: name -> (model units, {squashed source units: factor to model units, "per_dz1" flag})
SURFACE = {
    "piston_velocity": ("m s-1", {"m/s": 1.0, "ms-1": 1.0, "ms**-1": 1.0, "cm/h": 0.01 / 3600.0,
                                  "cmh-1": 0.01 / 3600.0, "cm/hr": 0.01 / 3600.0, "cmhr-1": 0.01 / 3600.0}),
    "sea_level_pressure": ("atm", {"atm": 1.0, "pa": 1.0 / 101325.0, "hpa": 100.0 / 101325.0,
                                   "mbar": 100.0 / 101325.0, "mb": 100.0 / 101325.0}),
    "pme": ("s-1", {"m/s": 1.0, "ms-1": 1.0, "ms**-1": 1.0, "kgm-2s-1": 1e-3, "kg/m2/s": 1e-3,
                    "mm/d": 1e-3 / 86400.0, "mmd-1": 1e-3 / 86400.0, "mm/day": 1e-3 / 86400.0}),
}
#: physical range of each field in model units (pme after division by the surface layer)
RANGES = {"piston_velocity": (0.0, 5e-4), "sea_level_pressure": (0.8, 1.2), "pme": (-1e-6, 1e-6)}


def _squash(u) -> str:
    return re.sub(r"[\s_.^]", "", str(u or "").strip().lower())


def surface_field(path: str, variable: str, grid, name: str, units: str | None = None) -> np.ndarray:
    """``name`` from a 2-D NetCDF variable, (nlat, nlon) in model units, NaN on land."""
    if name not in SURFACE:
        raise InputError(f"unknown surface forcing '{name}' (known: {sorted(SURFACE)})", path=path, variable=variable)
    target, factors = SURFACE[name]
    f = read_variable(path, variable, units=units)
    if "depth" in f.dims:
        raise InputError(f"expected a 2-D (lat, lon) field, got dimensions {f.dims}", path=path, variable=variable)
    key = _squash(f.units)
    if key not in factors:
        raise InputError(f"units {f.units!r} not known for {name} (accepted: {', '.join(sorted(factors))}; a units "
                         "key in the recipe overrides a missing or odd attribute)", path=path, variable=variable)
    v = f.values
    if "time" in f.dims and v.ndim == 3:
        v = np.nanmean(v, axis=0)
    if not np.isfinite(v).any():
        raise InputError("every value is missing", path=path, variable=variable)
    b = conservative_bin(v * factors[key], f.lat_edges, f.lon_edges, model_lat_edges(grid.lat),
                         model_lon_edges(grid.lon))
    surf = grid.mask[:, :, 0]
    out, _ = fill_wet(np.where(surf, b.value, np.nan), surf)
    if name == "pme":
        out = out / grid.dz[0]
    check_surface(out, name, grid, path)
    return np.where(surf, out, np.nan)


def check_surface(values, name: str, grid, path: str):
    """A surface field is physically possible at every wet column (more than 1 % out of range: error)."""
    lo, hi = RANGES[name]
    surf = grid.mask[:, :, 0]
    v = np.asarray(values, dtype=float)
    if v.shape != surf.shape:
        raise InputError(f"expected a {surf.shape} map, got shape {v.shape}", path=path, variable=name)
    w = v[surf]
    if not np.isfinite(w).all():
        raise InputError(f"{int((~np.isfinite(w)).sum())} wet surface columns without a value", path=path,
                         variable=name)
    out = int(((w < lo) | (w > hi)).sum())
    if out > 0.01 * w.size:
        raise InputError(f"{out} of {w.size} values outside the physical range {lo:g}..{hi:g} {SURFACE[name][0]} "
                         f"(found {w.min():.4g}..{w.max():.4g})", path=path, variable=name)
