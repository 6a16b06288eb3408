"""Sediment-trap / 234Th POC flux compilations (Mouw et al. 2016 style tables) matched to model boxes.

Input: a CSV table with one row per record and columns for station, latitude, longitude,
depth and POC flux (mg C m^-2 d^-1).  Column names are matched case-insensitively against
the aliases below (the Mouw et al. 2016 export uses ``ID_unique_loc_identifier``,
``latitude``, ``longitude``, ``depth``, ``POC_flux_mg_m2_d``); ``columns=`` overrides them.
Records are averaged per station and depth (time series stations carry hundreds of cups),
then each station-depth is matched to the model column containing its position and the
layer containing its depth.  Stations on model land or deeper than the model column are
reported and kept out of the comparison (``in_model`` False).  The model flux to compare
with is the flux through the bottom of the matched box (OCIM-BGC's convention).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

ALIASES = {
    "station": ["station", "id_unique_loc_identifier", "station_id", "site", "id"],
    "lat": ["lat", "latitude", "lat_n"],
    "lon": ["lon", "longitude", "lon_e"],
    "depth": ["depth", "depth_m", "trap_depth", "depth (m)"],
    "flux": ["poc_flux_mg_m2_d", "poc_flux", "flux", "poc flux (mg c m-2 d-1)", "poc_mg_m2_d"],
}


@dataclass
class TrapTable:
    """Station-depth averages matched to the model grid (1-D arrays over station-depths)."""

    station: np.ndarray
    lat: np.ndarray            #: deg N
    lon: np.ndarray            #: deg E, 0-360
    depth: np.ndarray          #: m
    flux: np.ndarray           #: mg C m^-2 d^-1, mean of the records
    n_records: np.ndarray      #: records averaged
    ilat: np.ndarray           #: model row (-1: outside)
    ilon: np.ndarray
    k: np.ndarray              #: model layer containing the depth (-1: below the column)
    box: np.ndarray            #: natural wet index (-1: not in the model)
    in_model: np.ndarray       #: bool
    path: str = ""

    def __len__(self):
        return int(self.station.size)


def _find(header, key, columns, path):
    if columns and key in columns:
        name = columns[key]
        for i, h in enumerate(header):
            if h.strip() == name:
                return i
        raise InputError(f"column '{name}' (for {key}) not in the header {header}", path=path, variable=name)
    low = [h.strip().lower() for h in header]
    for a in ALIASES[key]:
        if a in low:
            return low.index(a)
    raise InputError(f"no {key} column (looked for {ALIASES[key]}; pass columns={{'{key}': NAME}})", path=path)


def read_table(path: str, columns: dict | None = None):
    """Read the raw records: dict of arrays station, lat, lon, depth, flux (rows without flux dropped)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError as exc:
        raise InputError("file not found", path=path) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text (CSV) file: {exc}", path=path) from exc
    if len(rows) < 2:
        raise InputError("table has no data rows", path=path)
    header = rows[0]
    idx = {k: _find(header, k, columns, path) for k in ALIASES}
    out = {k: [] for k in ALIASES}
    for ln, r in enumerate(rows[1:], start=2):
        if not r or all(not c.strip() for c in r):
            continue
        if len(r) < len(header):
            raise InputError(f"line {ln} has {len(r)} fields, the header has {len(header)} (truncated file?)", path=path)
        fl = r[idx["flux"]].strip()
        if fl == "" or fl.lower() == "nan":
            continue
        try:
            vals = [float(r[idx[k]]) for k in ("lat", "lon", "depth")] + [float(fl)]
        except ValueError as exc:
            raise InputError(f"line {ln}: {exc}", path=path) from exc
        if not all(math.isfinite(v) for v in vals):
            continue
        out["station"].append(r[idx["station"]].strip())
        for k, v in zip(("lat", "lon", "depth", "flux"), vals):
            out[k].append(v)
    res = {k: np.asarray(v, dtype=float if k != "station" else object) for k, v in out.items()}
    if res["flux"].size == 0:
        raise InputError("no rows with a POC flux", path=path, variable=header[idx["flux"]])
    if np.any(np.abs(res["lat"]) > 90):
        raise InputError("latitudes outside -90..90", path=path, variable=header[idx["lat"]])
    if np.any(res["depth"] < 0):
        raise InputError("negative depths (expected metres, positive down)", path=path, variable=header[idx["depth"]])
    return res


def match_traps(path: str, grid, columns: dict | None = None) -> TrapTable:
    """Read ``path``, average per station and depth, and match to ``grid``'s boxes."""
    raw = read_table(path, columns)
    lon = np.mod(raw["lon"], 360.0)
    keys = {}
    for i in range(raw["flux"].size):
        key = (raw["station"][i], round(raw["lat"][i], 4), round(lon[i], 4), round(raw["depth"][i], 1))
        keys.setdefault(key, []).append(i)
    st, la, lo, de, fx, nr = [], [], [], [], [], []
    for (s, a, o, d), ix in keys.items():
        st.append(s), la.append(a), lo.append(o), de.append(d)
        fx.append(float(np.mean(raw["flux"][ix])))
        nr.append(len(ix))
    la, lo, de = np.array(la), np.array(lo), np.array(de)
    nlat, nlon, nz = grid.shape
    lat_e = -90.0 + np.arange(nlat + 1) * 180.0 / nlat
    lon0 = grid.lon[0] - 0.5 * 360.0 / nlon
    ilat = np.clip(np.searchsorted(lat_e, la, side="right") - 1, 0, nlat - 1)
    ilon = (np.floor((np.mod(lo - lon0, 360.0)) / (360.0 / nlon))).astype(int) % nlon
    bottoms = grid.zw + grid.dz
    k = np.searchsorted(bottoms, de, side="left")
    k = np.where(k >= nz, -1, k)
    wet = np.array([k[i] >= 0 and grid.mask[ilat[i], ilon[i], k[i]] for i in range(la.size)], bool)
    box = np.where(wet, grid.wet_index3d[ilat, ilon, np.maximum(k, 0)], -1)
    return TrapTable(station=np.array(st, dtype=object), lat=la, lon=lo, depth=de, flux=np.array(fx),
                     n_records=np.array(nr), ilat=ilat, ilon=ilon, k=np.where(wet, k, k), box=box, in_model=wet,
                     path=path)


def binned_3d(table: TrapTable, grid) -> np.ndarray:
    """Mean trap flux per model box (nlat, nlon, nz), NaN where no station-depth falls (like Mouw_POC_*.mat)."""
    s = np.zeros(grid.shape)
    c = np.zeros(grid.shape)
    ok = table.in_model
    np.add.at(s, (table.ilat[ok], table.ilon[ok], table.k[ok]), table.flux[ok])
    np.add.at(c, (table.ilat[ok], table.ilon[ok], table.k[ok]), 1.0)
    with np.errstate(invalid="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)
