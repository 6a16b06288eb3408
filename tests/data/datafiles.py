"""Writers of small data files in the real distributed formats, for the data-layer tests."""
from __future__ import annotations

import gzip
import os
import shutil

import numpy as np


def centres(n, lo, hi):
    d = (hi - lo) / n
    return lo + (np.arange(n) + 0.5) * d


def write_woa_like(path, values, lat, lon, depth, depth_bnds=None, variable="p_an",
                   units="micromoles_per_kilogram", fill=9.96921e36, packed=False):
    """NetCDF-4 like a WOA18 file: variable (time=1, depth, lat, lon), coordinate bounds, _FillValue."""
    import netCDF4
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", 1)
        nc.createDimension("depth", len(depth))
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        nc.createDimension("nbounds", 2)
        t = nc.createVariable("time", "f4", ("time",))
        t.units = "months since 1955-01-01 00:00:00"
        t[:] = [372.5]
        for name, vals, u in (("lat", lat, "degrees_north"), ("lon", lon, "degrees_east"), ("depth", depth, "meters")):
            v = nc.createVariable(name, "f4", (name,))
            v.units = u
            v[:] = vals
        nc["depth"].positive = "down"
        if depth_bnds is not None:
            nc["depth"].bounds = "depth_bnds"
            b = nc.createVariable("depth_bnds", "f4", ("depth", "nbounds"))
            b[:] = depth_bnds
        arr = np.array(values, dtype=float)
        if packed:
            v = nc.createVariable(variable, "i2", ("time", "depth", "lat", "lon"), fill_value=np.int16(-32767))
            v.set_auto_maskandscale(False)
            v.scale_factor = np.float32(0.001)
            v.add_offset = np.float32(1.0)
            raw = np.round((arr - 1.0) / 0.001)
            raw[~np.isfinite(arr)] = -32767
            v[0] = raw.astype(np.int16)
        else:
            v = nc.createVariable(variable, "f4", ("time", "depth", "lat", "lon"), fill_value=np.float32(fill))
            v.set_auto_maskandscale(False)
            out = np.where(np.isfinite(arr), arr, fill).astype(np.float32)
            v[0] = out
        if units is not None:
            v.units = units


def write_glodap_like(path, values, lat, lon, depth, variable="TCO2", units="micro-mol kg-1"):
    """Classic NetCDF-3 like the GLODAPv2 mapped files: dims (depth_surface, lat, lon), depth in 'Depth'."""
    from scipy.io import netcdf_file
    with netcdf_file(path, "w") as nc:
        nc.createDimension("depth_surface", len(depth))
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        d = nc.createVariable("Depth", "f8", ("depth_surface",))
        d[:] = depth
        d.units = b"meters"
        la = nc.createVariable("lat", "f8", ("lat",))
        la[:] = lat
        la.units = b"degrees_north"
        lo = nc.createVariable("lon", "f8", ("lon",))
        lo[:] = lon
        lo.units = b"degrees_east"
        v = nc.createVariable(variable, "f8", ("depth_surface", "lat", "lon"))
        v[:] = np.where(np.isfinite(values), values, -999.0)
        v._FillValue = -999.0
        if units is not None:
            v.units = units.encode()


def write_op_hdf4(path, npp, limit=(-90.0, -180.0, 90.0, 180.0), units="mg C m-2 d-1", compress=False):
    """An Ocean Productivity monthly file: SDS 'npp' north-to-south from -180 E, -9999 holes."""
    from pyhdf.SD import SD, SDC
    plain = path[:-3] if path.endswith(".gz") else path
    sd = SD(plain, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    ds = sd.create("npp", SDC.FLOAT32, npp.shape)
    ds[:] = np.where(np.isfinite(npp), npp, -9999.0).astype(np.float32)
    if units is not None:
        ds.Units = units
    ds.endaccess()
    sd.Limit = [float(x) for x in limit]
    setattr(sd, "Hole Value", -9999.0)
    sd.end()
    if compress or path.endswith(".gz"):
        with open(plain, "rb") as src, gzip.open(plain + ".gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.remove(plain)
        return plain + ".gz"
    return plain


def write_epc100(path, values, lat, lon, time_days, units="mol m-2 s-1"):
    """A CMIP6-like epc100 file: (time, lat, lon), noleap calendar, lat/lon bounds."""
    import netCDF4
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        nc.createDimension("bnds", 2)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 1850-01-01"
        t.calendar = "noleap"
        t[:] = time_days
        for name, vals, u in (("lat", lat, "degrees_north"), ("lon", lon, "degrees_east")):
            v = nc.createVariable(name, "f8", (name,))
            v.units = u
            v.bounds = f"{name}_bnds"
            v[:] = vals
            d = np.diff(vals).mean()
            b = nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"))
            b[:] = np.stack([vals - d / 2, vals + d / 2], axis=1)
        v = nc.createVariable("epc100", "f4", ("time", "lat", "lon"), fill_value=np.float32(1e20))
        v.units = units
        v[:] = np.where(np.isfinite(values), values, 1e20)
