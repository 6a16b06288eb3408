"""Read one variable of a NetCDF file (NetCDF-4/HDF5 through h5py, classic NetCDF-3 through SciPy).

The reader returns a :class:`GriddedField`: values as float with NaN for missing data
(``_FillValue``, ``missing_value`` and ``valid_min/valid_max`` honoured, ``scale_factor``
and ``add_offset`` applied), axes identified from names, ``units``/``standard_name``/``axis``
attributes (latitude, longitude, depth, time), cell edges from the ``bounds`` variables
when present (else midway between centres), and the units attribute.  Axes are returned
in the order (time, depth, lat, lon); latitude may run north to south and longitude may
be 0-360 or -180-180 in the file: the binning works from cell edges in any order.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .fileio import GZIP_SIGNATURE, HDF5_SIGNATURE, NETCDF3_SIGNATURES, plain_file, signature

_LAT_NAMES = {"lat", "latitude", "nav_lat", "y", "lat_1", "lats"}
_LON_NAMES = {"lon", "longitude", "nav_lon", "x", "lon_1", "lons"}
_DEPTH_NAMES = {"depth", "lev", "z", "depth_surface", "deptht", "olevel", "depth_1", "level", "pressure"}
_TIME_NAMES = {"time", "t", "month"}
_PLACEHOLDER = "This is a netCDF dimension but not a netCDF variable"


@dataclass
class GriddedField:
    """A gridded variable as read from a file.

    values : float array, axes ``dims`` (subset of time, depth, lat, lon in that order), NaN = missing
    lat_edges, lon_edges : (n+1,) cell edges (deg N, deg E), file order
    depth_edges : (nz+1,) m, positive down (None for 2-D fields)
    time : (nt,) decimal years (None when the variable has no time axis)
    units : the file's units attribute (None when absent)
    """

    values: np.ndarray
    dims: tuple
    lat_edges: np.ndarray
    lon_edges: np.ndarray
    depth_edges: np.ndarray | None
    time: np.ndarray | None
    units: str | None
    path: str
    variable: str
    attrs: dict = field(default_factory=dict)


def _attr(attrs, name, default=None):
    v = attrs.get(name, default)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        v = v.ravel()[0]
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    if isinstance(v, np.ndarray) and v.size == 1:
        return v.ravel()[0]
    return v


class _H5Source:
    def __init__(self, path):
        import h5py
        try:
            self.f = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(f"cannot be opened as NetCDF-4/HDF5 (truncated or corrupt?): {exc}", path=path) from exc

    def names(self):
        return [k for k, v in self.f.items() if hasattr(v, "shape")]

    def has(self, name):
        return name in self.f and hasattr(self.f[name], "shape")

    def attrs(self, name):
        return {k: v for k, v in self.f[name].attrs.items()}

    def data(self, name):
        return self.f[name][()]

    def shape(self, name):
        return self.f[name].shape

    def dims(self, name):
        ds = self.f[name]
        out = []
        for i in range(ds.ndim):
            d = ds.dims[i]
            out.append(d[0].name.rsplit("/", 1)[-1] if len(d) else f"dim{i}")
        return out

    def is_coordinate(self, name):
        if not self.has(name):
            return False
        nm = _attr(self.attrs(name), "NAME", "")
        return not str(nm).startswith(_PLACEHOLDER)

    def close(self):
        self.f.close()


class _NC3Source:
    def __init__(self, path):
        from scipy.io import netcdf_file
        try:
            self.f = netcdf_file(path, "r", mmap=False, maskandscale=False)
        except Exception as exc:  # noqa: BLE001 - SciPy raises several types for a bad header
            raise InputError(f"cannot be read as classic NetCDF (truncated or corrupt?): {exc}", path=path) from exc

    def names(self):
        return list(self.f.variables)

    def has(self, name):
        return name in self.f.variables

    def attrs(self, name):
        return dict(self.f.variables[name]._attributes)

    def data(self, name):
        return np.array(self.f.variables[name][:])

    def shape(self, name):
        return self.f.variables[name].shape

    def dims(self, name):
        return list(self.f.variables[name].dimensions)

    def is_coordinate(self, name):
        return self.has(name)

    def close(self):
        self.f.close()


def _axis_of(src, dim, coord):
    n = dim.lower()
    attrs = src.attrs(coord) if coord else {}
    units = str(_attr(attrs, "units", "") or "").lower()
    std = str(_attr(attrs, "standard_name", "") or "").lower()
    axis = str(_attr(attrs, "axis", "") or "").upper()
    if n in _LAT_NAMES or std == "latitude" or units.startswith("degrees_n") or units == "degree_north" or axis == "Y":
        return "lat"
    if n in _LON_NAMES or std == "longitude" or units.startswith("degrees_e") or units == "degree_east" or axis == "X":
        return "lon"
    if n in _TIME_NAMES or std == "time" or axis == "T" or " since " in units:
        return "time"
    if n in _DEPTH_NAMES or std in ("depth", "sea_water_pressure") or axis == "Z" or n.startswith("depth"):
        return "depth"
    return None


def _edges_from_centres(c):
    """Cell edges midway between centres, the outer ones mirrored."""
    c = np.asarray(c, dtype=float)
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _bounds_to_edges(b):
    b = np.asarray(b, dtype=float)
    if b.ndim != 2 or b.shape[1] != 2:
        raise ValueError("bounds must be (n, 2)")
    return np.concatenate([b[:, 0], b[-1:, 1]])


def _decimal_years(values, units, calendar):
    m = re.match(r"\s*(days|hours|seconds|months|years)\s+since\s+(\d+)-(\d+)-(\d+)", units or "")
    v = np.asarray(values, dtype=float)
    if not m:
        return v  # already years, or an index
    unit, y, mo, d = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
    cal = (calendar or "standard").lower()
    ylen = {"noleap": 365.0, "365_day": 365.0, "360_day": 360.0, "all_leap": 366.0}.get(cal, 365.2425)
    start = y + ((datetime.date(2001, mo, 1) - datetime.date(2001, 1, 1)).days + d - 1) / 365.0
    per_day = {"days": 1.0, "hours": 1 / 24.0, "seconds": 1 / 86400.0}.get(unit)
    if unit == "months":
        return start + v / 12.0
    if unit == "years":
        return start + v
    return start + v * per_day / ylen


def _open(path):
    sig = signature(path, 8)
    if sig[:2] == GZIP_SIGNATURE:
        return None  # caller decompresses first
    if sig == HDF5_SIGNATURE:
        return _H5Source(path)
    if sig[:4] in NETCDF3_SIGNATURES:
        return _NC3Source(path)
    raise InputError("not a NetCDF file (no NetCDF-3 or HDF5 signature: truncated, corrupt or another format)",
                     path=path)


def list_variables(path: str) -> list[str]:
    with plain_file(path) as p:
        src = _open(p)
        try:
            return src.names()
        finally:
            src.close()


def read_variable(path: str, variable: str, *, units: str | None = None) -> GriddedField:
    """Read ``variable`` from the NetCDF file ``path`` (gzip allowed) as a :class:`GriddedField`.

    ``units`` overrides the file's units attribute (for files that lack one).
    """
    with plain_file(path) as p:
        src = _open(p)
        try:
            return _read(src, path, variable, units)
        finally:
            src.close()


def _masked(raw, attrs, path, variable):
    a = np.asarray(raw)
    if a.dtype.kind not in "fiu":
        raise InputError(f"is not numeric (dtype {a.dtype})", path=path, variable=variable)
    bad = np.zeros(a.shape, bool)
    for key in ("_FillValue", "missing_value"):
        fv = attrs.get(key)
        if fv is not None:
            for f in np.atleast_1d(np.asarray(fv, dtype=float)):
                bad |= np.isclose(a.astype(float), f, rtol=1e-6, atol=0) if np.isfinite(f) else ~np.isfinite(a)
    v = a.astype(float)
    if "valid_min" in attrs:
        bad |= v < float(np.asarray(attrs["valid_min"]).ravel()[0])
    if "valid_max" in attrs:
        bad |= v > float(np.asarray(attrs["valid_max"]).ravel()[0])
    if "valid_range" in attrs:
        lo, hi = np.asarray(attrs["valid_range"], dtype=float).ravel()[:2]
        bad |= (v < lo) | (v > hi)
    if a.dtype.kind == "f":
        bad |= ~np.isfinite(v) | (np.abs(v) > 9.0e36)  # NetCDF default float fill 9.97e36
    scale = attrs.get("scale_factor")
    off = attrs.get("add_offset")
    if scale is not None:
        v = v * float(np.asarray(scale).ravel()[0])
    if off is not None:
        v = v + float(np.asarray(off).ravel()[0])
    v[bad] = np.nan
    return v


def _read(src, path, variable, units_override):
    if not src.has(variable):
        raise InputError(f"variable not found (file has: {', '.join(sorted(src.names()))})", path=path,
                         variable=variable)
    attrs = src.attrs(variable)
    try:
        raw = src.data(variable)
    except (OSError, ValueError) as exc:
        raise InputError(f"data cannot be read (truncated or corrupt file?): {exc}", path=path,
                         variable=variable) from exc
    values = _masked(raw, attrs, path, variable)
    dims = src.dims(variable)
    axes = {}
    coords = {}
    for i, d in enumerate(dims):
        coord = d if src.is_coordinate(d) and len(src.shape(d)) == 1 and src.shape(d)[0] == values.shape[i] else None
        ax = _axis_of(src, d, coord)
        if ax == "depth" and coord is None:
            # GLODAPv2 mapped files: dimension 'depth_surface', values in the variable 'Depth'
            for cand in ("Depth", "depth", "DEPTH", "lev"):
                if src.has(cand) and src.shape(cand) == (values.shape[i],):
                    coord = cand
                    break
        if ax is None:
            if values.shape[i] == 1:
                continue
            raise InputError(f"dimension '{d}' (length {values.shape[i]}) is not a latitude, longitude, depth "
                             "or time axis", path=path, variable=variable)
        if ax in axes:
            raise InputError(f"two dimensions look like {ax} ({dims[axes[ax]]}, {d})", path=path, variable=variable)
        axes[ax] = i
        coords[ax] = coord
    for need in ("lat", "lon"):
        if need not in axes:
            raise InputError(f"no {need} axis among dimensions {dims}", path=path, variable=variable)
    order = [axes[a] for a in ("time", "depth", "lat", "lon") if a in axes]
    squeeze = [i for i in range(values.ndim) if i not in order]
    values = np.transpose(values, order + squeeze).reshape([values.shape[i] for i in order])
    out_dims = tuple(a for a in ("time", "depth", "lat", "lon") if a in axes)

    def edges(ax, lo=None, hi=None):
        c = coords.get(ax)
        n = values.shape[out_dims.index(ax)]
        if c is None:
            raise InputError(f"the {ax} axis has no coordinate variable", path=path, variable=variable)
        cattrs = src.attrs(c)
        centres = np.asarray(src.data(c), dtype=float).ravel()
        bname = _attr(cattrs, "bounds")
        for cand in ([bname] if bname else []) + [f"{c}_bnds", f"{c}_bounds"]:
            if cand and src.has(cand) and tuple(src.shape(cand)) == (n, 2):
                e = _bounds_to_edges(src.data(cand))
                break
        else:
            if n == 1:
                raise InputError(f"a single {ax} cell needs a bounds variable", path=path, variable=c)
            e = _edges_from_centres(centres)
        if lo is not None:
            e = np.clip(e, lo, hi)
        if not (np.all(np.diff(e) > 0) or np.all(np.diff(e) < 0)):
            raise InputError(f"{ax} coordinate is not monotonic", path=path, variable=c)
        return e, cattrs

    lat_e, _ = edges("lat", -90.0, 90.0)
    lon_e, _ = edges("lon")
    depth_e = None
    if "depth" in axes:
        depth_e, dattrs = edges("depth")
        if str(_attr(dattrs, "positive", "down")).lower() == "up" and np.all(depth_e <= 0):
            depth_e = -depth_e
        depth_e = np.maximum(depth_e, 0.0)
    time = None
    if "time" in axes:
        c = coords.get("time")
        if c is None:
            time = np.arange(values.shape[0], dtype=float)
        else:
            tattrs = src.attrs(c)
            time = _decimal_years(src.data(c), _attr(tattrs, "units", ""), _attr(tattrs, "calendar", ""))
    if "time" in out_dims and values.shape[0] == 1:   # a climatology's single time record
        values = values[0]
        out_dims = out_dims[1:]
    u = units_override if units_override is not None else _attr(attrs, "units")
    if isinstance(u, np.generic):
        u = str(u)
    return GriddedField(values=values, dims=out_dims, lat_edges=lat_e, lon_edges=lon_e, depth_edges=depth_e,
                        time=time, units=u, path=path, variable=variable,
                        attrs={k: _attr(attrs, k) for k in attrs if k not in ("DIMENSION_LIST", "REFERENCE_LIST")})
