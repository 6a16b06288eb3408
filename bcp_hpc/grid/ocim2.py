"""The OCIM2 ``.mat`` layout: read a grid (mask, grid struct, basin masks) and write one back.

Accepted inputs (spec §1.2):

* a transport-operator file with a struct ``output`` holding ``M3d``, ``grid`` and ``MSKS``;
* a mask file such as ``M3d91x180x24.mat`` (``M3d`` and ``MSKS`` at top level).

When the file has no ``grid`` struct, the geometry is OCIM2's (regular lat-lon
bands, quadratic layer stretching to 5750 m, spec §1.1) for the mask's shape.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io import matfile
from .grid import Grid, ocim2_vertical_grid, regular_latlon_grid

BASIN_NAMES = ("ATL", "PAC", "IND", "ARC", "MED")


def _finite(arr, path, var):
    a = np.asarray(arr, dtype=float)
    if not np.all(np.isfinite(a)):
        raise InputError(f"contains {np.count_nonzero(~np.isfinite(a))} NaN/Inf values", path=path, variable=var)
    return a


def grid_from_matdict(d: dict, path: str) -> Grid:
    """Build a :class:`Grid` from a loaded OCIM2 ``.mat`` dict (see module docstring)."""
    root = d["output"] if isinstance(d.get("output"), dict) else d
    rootname = "output." if root is not d else ""
    if "M3d" not in root:
        raise InputError("no wet mask found (expected 'M3d' or 'output.M3d')", path=path, variable=rootname + "M3d")
    mask = np.asarray(root["M3d"])
    if mask.ndim != 3:
        raise InputError(f"wet mask must be 3-D (lat, lon, depth), got shape {mask.shape}", path=path,
                         variable=rootname + "M3d")
    if not np.all(np.isfinite(mask.astype(float))):
        raise InputError("wet mask contains NaN", path=path, variable=rootname + "M3d")
    if not np.all(np.isin(mask, (0, 1))):
        raise InputError("wet mask must contain only 0 and 1", path=path, variable=rootname + "M3d")
    nlat, nlon, nz = mask.shape
    basins = {}
    msks = root.get("MSKS", d.get("MSKS"))
    if isinstance(msks, dict):
        for b in BASIN_NAMES:
            if b in msks:
                bm = np.asarray(msks[b])
                if bm.shape != mask.shape:
                    raise InputError(f"basin mask shape {bm.shape} differs from M3d {mask.shape}",
                                     path=path, variable=f"MSKS.{b}")
                basins[b] = bm.astype(bool) & mask.astype(bool)
    g = root.get("grid")
    if isinstance(g, dict):
        gname = rootname + "grid"
        try:
            xt = _finite(g["xt"], path, gname + ".xt").ravel()
            yt = _finite(g["yt"], path, gname + ".yt").ravel()
            zt = _finite(g["zt"], path, gname + ".zt").ravel()
            dzt = _finite(g["dzt"], path, gname + ".dzt").ravel()
        except KeyError as exc:
            raise InputError("grid struct lacks a field", path=path, variable=f"{gname}.{exc.args[0]}") from exc
        zw = np.asarray(g["zw"], dtype=float).ravel() if "zw" in g else np.concatenate([[0], np.cumsum(dzt)[:-1]])
        for var, arr, n in (("yt", yt, nlat), ("xt", xt, nlon), ("zt", zt, nz), ("dzt", dzt, nz)):
            if arr.size != n:
                raise InputError(f"has {arr.size} entries but M3d has {n} along that axis (shape {mask.shape})",
                                 path=path, variable=f"{gname}.{var}")
        area = None
        if "DXT3d" in g and "DYT3d" in g:
            dx = np.asarray(g["DXT3d"], dtype=float)
            dy = np.asarray(g["DYT3d"], dtype=float)
            if dx.shape != mask.shape or dy.shape != mask.shape:
                raise InputError(f"shape {dx.shape} differs from M3d {mask.shape}", path=path, variable=gname + ".DXT3d")
            area = dx[:, :, 0] * dy[:, :, 0]
            wet2d = mask[:, :, 0].astype(bool)
            if not np.all(np.isfinite(area[wet2d])):
                raise InputError("NaN box widths at wet points", path=path, variable=gname + ".DXT3d")
            area = np.where(np.isfinite(area), area, 0.0)
        return Grid(mask=mask, lat=yt, lon=xt, zw=zw, zt=zt, dz=dzt, area2d=area, basins=basins, name=path)
    lat, lon = regular_latlon_grid(nlat, nlon)
    zw, zt, dz = ocim2_vertical_grid(nz)
    return Grid(mask=mask, lat=lat, lon=lon, zw=zw, zt=zt, dz=dz, basins=basins, name=path)


def read_grid(path: str) -> Grid:
    """Read a grid from an OCIM2-layout ``.mat`` file (v5 or v7.3)."""
    d = matfile.load(path)
    return grid_from_matdict(d, path)


def grid_struct(grid: Grid) -> dict:
    """The ``output.grid`` struct of the OCIM2 layout for ``grid``."""
    nlat, nlon, nz = grid.shape
    lat3 = np.broadcast_to(grid.lat[:, None, None], grid.shape)
    lon3 = np.broadcast_to(grid.lon[None, :, None], grid.shape)
    zt3 = np.broadcast_to(grid.zt[None, None, :], grid.shape)
    zw3 = np.broadcast_to(grid.zw[None, None, :], grid.shape)
    dz3 = np.broadcast_to(grid.dz[None, None, :], grid.shape)
    dy = np.deg2rad(180.0 / nlat) * 6.371e6
    dx2 = grid.area2d / dy
    dx3 = np.broadcast_to(dx2[:, :, None], grid.shape)
    dy3 = np.full(grid.shape, dy)
    return {
        "XT3d": np.array(lon3), "YT3d": np.array(lat3), "ZT3d": np.array(zt3), "ZW3d": np.array(zw3),
        "DXT3d": np.array(dx3), "DYT3d": dy3, "DZT3d": np.array(dz3),
        "dAt": np.array(np.broadcast_to(grid.area2d[:, :, None], grid.shape)),
        "dVt": np.array(np.broadcast_to(grid.area2d[:, :, None], grid.shape) * dz3),
        "xt": grid.lon, "yt": grid.lat, "zt": grid.zt, "zw": grid.zw, "dzt": grid.dz,
    }


def output_struct(grid: Grid, TR=None) -> dict:
    """The OCIM2 ``output`` struct: ``M3d``, ``grid``, ``MSKS`` and optionally ``TR`` (yr^-1, convergence form)."""
    out = {"M3d": grid.mask.astype(np.uint8), "grid": grid_struct(grid)}
    if grid.basins:
        out["MSKS"] = {k: np.asarray(v).astype(np.uint8) for k, v in grid.basins.items()}
    if TR is not None:
        out["TR"] = TR
    return out
