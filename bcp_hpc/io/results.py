"""Result files: JSON payloads, CSV tables, and gridded fields as CF-style NetCDF-4 (HDF5 with
dimension scales, which ``xarray.open_dataset(path, engine="h5netcdf")`` reads as labelled arrays).

Every writer is atomic (a temporary file renamed into place), so an interrupted run never leaves a
half-written file and never replaces a good one with a broken one.
"""
from __future__ import annotations

import csv
import io
import json

import h5py
import numpy as np

from .atomic import atomic_path, write_text_atomic
from .netcdf_h5 import DimensionedWriter


def write_json(path: str, payload: dict):
    write_text_atomic(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return float(v)


def write_csv(path: str, header: list, rows: list):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    write_text_atomic(path, buf.getvalue())


def _coordinates(w: DimensionedWriter, grid):
    w.dimension("lat", grid.lat, "degrees_north", standard_name="latitude", long_name="latitude", axis="Y")
    w.dimension("lon", grid.lon, "degrees_east", standard_name="longitude", long_name="longitude", axis="X")
    w.dimension("depth", grid.zt, "m", standard_name="depth", long_name="depth of the box centre", positive="down",
                axis="Z")


def _field3d(grid, vec):
    """(depth, lat, lon) array of a natural-order n-vector, NaN on land."""
    return np.transpose(grid.to3d(np.asarray(vec, dtype=float)), (2, 0, 1))


def _geometry(w: DimensionedWriter, grid):
    """What weighted statistics of the fields need: box volumes, column areas, the basins."""
    names = grid.basin_names()
    w.variable("box_volume", _field3d(grid, grid.box_volume), ("depth", "lat", "lon"), units="m3",
               long_name="volume of the model box", _FillValue=np.float64(np.nan))
    area = np.where(grid.mask[:, :, 0], grid.area2d, np.nan)
    w.variable("area", area, ("lat", "lon"), units="m2", long_name="horizontal area of the water column",
               _FillValue=np.float64(np.nan))
    w.variable("basin", grid.basin_codes().astype(np.int8), ("lat", "lon"), units=None,
               long_name="ocean basin of the column", flag_values=np.array(sorted(names), dtype=np.int8),
               flag_meanings=" ".join(names[k].lower() for k in sorted(names)),
               comment="0: none (land, or no basin)")


def write_gridded(path: str, grid, fields: dict, maps: dict | None = None, attrs: dict | None = None):
    """A NetCDF-4 file of gridded results.

    ``fields``: name -> (natural-order n-vector, units, long_name), written as (depth, lat, lon);
    ``maps``: name -> ((nlat, nlon) array, units, long_name), written as (lat, lon); NaN marks land
    (``_FillValue``).  ``attrs``: global attributes (strings or numbers)."""
    with atomic_path(path, ".nc") as tmp:
        with h5py.File(tmp, "w") as h:
            w = DimensionedWriter(h)
            _coordinates(w, grid)
            _geometry(w, grid)
            for name, (vec, units, long_name) in fields.items():
                w.variable(name, _field3d(grid, vec), ("depth", "lat", "lon"), units=units, long_name=long_name,
                           _FillValue=np.float64(np.nan))
            for name, (arr, units, long_name) in (maps or {}).items():
                w.variable(name, np.asarray(arr, dtype=float), ("lat", "lon"), units=units, long_name=long_name,
                           _FillValue=np.float64(np.nan))
            h.attrs["Conventions"] = "CF-1.8"
            for k, v in (attrs or {}).items():
                h.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, default=_jsonable)
