"""Satellite NPP products of the Ocean Productivity site (VGPM, CbPM, CAFE) onto the model surface.

Distributed form: one HDF4 file per month, ``<product>.<YYYY><DDD>.hdf`` (often ``.hdf.gz``),
``DDD`` the day of the year the month starts; one scientific data set ``npp`` in
mg C m^-2 d^-1 on a global regular grid stored north to south from -180 E (the global
``Limit`` attribute ``[lat_min, lon_min, lat_max, lon_max]`` is honoured when present), with
``-9999`` ("Hole Value") where there is no retrieval (clouds, ice, polar night, land).

Climatology (Wu et al. 2025 §2.1): for every year and pixel, a missing month gets the
smaller of 10 % of that year's maximum monthly NPP and the lowest observed monthly NPP at
that pixel; the 12 months are averaged to an annual mean, the annual means over the chosen
years to the climatology, which is then binned area-conservatively onto the model surface.
Wet surface boxes that no valid pixel overlaps (e.g. permanent ice) are filled
(:mod:`bcp_hpc.data.fill`) and flagged.
"""
from __future__ import annotations

import datetime
import logging
import os
import re
from collections import defaultdict

import numpy as np

from ..errors import InputError
from .fileio import HDF4_SIGNATURE, plain_file, signature
from .fill import fill_wet
from .regrid import conservative_bin, model_lat_edges, model_lon_edges
from .units import canonical_units, check_kind, to_model_units

log = logging.getLogger(__name__)
PRODUCTS = ("vgpm", "cbpm", "cafe")
_NAME = re.compile(r"^(?P<product>[a-z0-9_\-]+)\.(?P<year>\d{4})(?P<doy>\d{3})\.hdf(\.gz)?$", re.IGNORECASE)


def parse_name(path: str):
    """``(product, year, month)`` from an Ocean Productivity file name."""
    m = _NAME.match(os.path.basename(path))
    if not m:
        raise InputError("file name is not of the Ocean Productivity form <product>.<YYYYDDD>.hdf[.gz]", path=path)
    year, doy = int(m.group("year")), int(m.group("doy"))
    if not 1 <= doy <= 366:
        raise InputError(f"day of year {doy} in the file name is out of range", path=path)
    month = (datetime.date(year, 1, 1) + datetime.timedelta(days=doy - 1)).month
    return m.group("product").lower(), year, month


def _pyhdf():
    try:
        from pyhdf.SD import SD, SDC  # noqa: F401
        from pyhdf.error import HDF4Error  # noqa: F401
    except ImportError as exc:  # pragma: no cover - set-up installs it (Debian python3-hdf4)
        raise InputError("reading HDF4 NPP files needs pyhdf (Debian package python3-hdf4, or pip install pyhdf)") \
            from exc
    import pyhdf.SD
    import pyhdf.error
    return pyhdf.SD, pyhdf.error.HDF4Error


def read_month(path: str, variable: str = "npp", units: str | None = None):
    """Read one monthly file: ``(npp, lat_edges, lon_edges)``, npp in mg C m^-2 d^-1 with NaN = no data
    (``units`` overrides the file's units attribute)."""
    SDmod, HDF4Error = _pyhdf()
    with plain_file(path) as p:
        if signature(p, 4) != HDF4_SIGNATURE:
            raise InputError("not an HDF4 file (truncated, corrupt or another format)", path=path)
        try:
            sd = SDmod.SD(p, SDmod.SDC.READ)
        except HDF4Error as exc:
            raise InputError(f"cannot be opened as HDF4: {exc}", path=path) from exc
        try:
            names = list(sd.datasets())
            if variable not in names:
                raise InputError(f"data set not found (file has: {', '.join(sorted(names))})", path=path,
                                 variable=variable)
            try:
                ds = sd.select(variable)
                raw = np.asarray(ds.get(), dtype=float)
                attrs = ds.attributes()
                ds.endaccess()
            except HDF4Error as exc:
                raise InputError(f"data cannot be read (truncated or corrupt?): {exc}", path=path,
                                 variable=variable) from exc
            gattrs = sd.attributes()
        finally:
            sd.end()
    if raw.ndim != 2:
        raise InputError(f"expected a 2-D (lat, lon) array, got shape {raw.shape}", path=path, variable=variable)
    if units is None:
        units = attrs.get("Units", attrs.get("units", gattrs.get("Units", gattrs.get("units"))))
    if units is None:
        units = "mg C m-2 d-1"  # the Ocean Productivity standard products' unit (documented above)
    key = canonical_units(units, path=path, variable=variable)
    check_kind(key, "areal_flux", path=path, variable=variable, original=units)
    bad = ~np.isfinite(raw)
    for k in ("Hole Value", "_FillValue", "missing_value", "Hole_Value"):
        for src in (attrs, gattrs):
            if k in src:
                bad |= np.isclose(raw, float(np.asarray(src[k]).ravel()[0]))
    bad |= raw < 0  # the distributed files mark every kind of hole with a negative value
    npp = np.where(bad, np.nan, to_model_units(raw, key, "areal_flux"))
    nlat, nlon = npp.shape
    limit = gattrs.get("Limit")
    lat_min, lon_min, lat_max, lon_max = (np.asarray(limit, dtype=float).ravel()[:4] if limit is not None
                                          else (-90.0, -180.0, 90.0, 180.0))
    lat_edges = np.linspace(lat_max, lat_min, nlat + 1)   # stored north to south
    lon_edges = np.linspace(lon_min, lon_max, nlon + 1)
    if not np.isfinite(npp).any():
        raise InputError("every value is missing (all-NaN month)", path=path, variable=variable)
    return npp, lat_edges, lon_edges


def gap_fill_year(months: np.ndarray) -> np.ndarray:
    """Apply the paper's gap rule to one year of monthly NPP (12, ...): returns a filled copy.

    A missing month at a location gets ``min(0.1 * max_observed, min_observed)`` of that
    location's observed months in that year; locations with no observed month stay NaN.
    """
    m = np.array(months, dtype=float)
    have = np.isfinite(m)
    anyobs = have.any(axis=0)
    # locations with no observed month get 0 here and NaN below (no all-NaN slices for nanmax)
    mx = np.nanmax(np.where(anyobs[None], m, 0.0), axis=0)
    mn = np.nanmin(np.where(anyobs[None], m, 0.0), axis=0)
    fill = np.minimum(0.1 * mx, mn)
    out = np.where(have, m, fill[None])
    out[:, ~anyobs] = np.nan
    return out


def npp_climatology(files, grid, product: str | None = None, years=None, variable: str = "npp",
                    units: str | None = None):
    """Annual NPP climatology on the model surface from monthly Ocean Productivity files.

    Returns a dict: ``npp`` (nlat, nlon) mg C m^-2 d^-1 (NaN on land), ``filled`` (bool map of
    wet boxes filled, not observed), ``coverage`` (observed fraction of each box), ``years``,
    ``files`` (used, in order), ``product``.
    """
    by_year = defaultdict(dict)
    for f in sorted(files):
        prod, y, mo = parse_name(f)
        if product is not None and prod != product:
            raise InputError(f"file is a '{prod}' product, expected '{product}'", path=f)
        product = product or prod
        if years is not None and y not in years:
            continue
        if mo in by_year[y]:
            raise InputError(f"two files for {y}-{mo:02d}: {by_year[y][mo]} and {f}", path=f)
        by_year[y][mo] = f
    if not by_year:
        raise InputError(f"no {product or 'NPP'} files for the years {years}")
    for y, months in sorted(by_year.items()):
        missing = sorted(set(range(1, 13)) - set(months))
        if missing:
            raise InputError(f"year {y} lacks the monthly files for months {missing} (need all 12)",
                             path=os.path.dirname(next(iter(months.values()))))
    acc = None
    cnt = None
    grid_edges = None
    used = []
    for y, months in sorted(by_year.items()):
        stack = []
        for mo in range(1, 13):
            npp, le, oe = read_month(months[mo], variable, units)
            if grid_edges is None:
                grid_edges = (le, oe, npp.shape)
            elif npp.shape != grid_edges[2]:
                raise InputError(f"grid {npp.shape} differs from the first file's {grid_edges[2]}",
                                 path=months[mo], variable=variable)
            stack.append(npp)
            used.append(months[mo])
        annual = gap_fill_year(np.array(stack)).mean(axis=0)
        ok = np.isfinite(annual)
        acc = np.where(ok, annual, 0.0) if acc is None else acc + np.where(ok, annual, 0.0)
        cnt = ok.astype(int) if cnt is None else cnt + ok
        log.info("NPP %s %d: %d monthly files read", product, y, 12)
    with np.errstate(invalid="ignore"):
        clim = np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)
    le, oe, _ = grid_edges
    b = conservative_bin(clim, le, oe, model_lat_edges(grid.lat), model_lon_edges(grid.lon))
    surf = grid.mask[:, :, 0]
    filled, was_filled = fill_wet(np.where(surf, b.value, np.nan), surf)
    return {"npp": filled, "filled": was_filled, "coverage": np.where(surf, b.coverage, 0.0),
            "years": sorted(by_year), "files": used, "product": product}


def global_npp_pg_c_per_yr(npp_map, grid) -> float:
    """Global integral (Pg C yr^-1) of an NPP map in mg C m^-2 d^-1 over the wet surface."""
    surf = grid.mask[:, :, 0]
    return float(np.nansum(np.where(surf, npp_map, 0.0) * grid.area2d) * 365.0 / 1e18)
