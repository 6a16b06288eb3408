"""Gridded climatologies (WOA18 nutrients, O2, T, S; GLODAPv2 mapped DIC, ALK) onto the model boxes.

Steps: read the variable (:mod:`bcp_hpc.data.netcdf`), check its units against the field's
kind, bin volume-conservatively onto the model boxes (:mod:`bcp_hpc.data.regrid`), convert
to model units on the model grid (umol kg^-1 -> mmol m^-3 with the in-situ density of the
binned temperature and salinity when the recipe has them, else 1025 kg m^-3), and fill
unobserved wet boxes only for fields the model equations need (:mod:`bcp_hpc.data.fill`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .fill import fill_wet
from .netcdf import read_variable
from .regrid import conservative_bin, model_lat_edges, model_lon_edges
from .units import canonical_units, check_kind, seawater_density, to_model_units

#: model field -> (kind, physical range in model units, model needs a value in every wet box)
FIELDS = {
    "po4": ("concentration", (0.0, 4.0), True),
    "o2": ("concentration", (0.0, 450.0), False),
    "si": ("concentration", (0.0, 250.0), False),
    "no3": ("concentration", (0.0, 60.0), False),
    "dic": ("concentration", (1700.0, 2600.0), False),
    "alk": ("concentration", (1800.0, 2800.0), False),
    "temperature": ("temperature", (-2.5, 35.0), True),
    "salinity": ("salinity", (0.0, 42.0), True),
    # observations binned for the misfit (never filled: unobserved boxes carry no weight)
    "po4_obs": ("concentration", (0.0, 4.0), False),
    "o2_obs": ("concentration", (0.0, 450.0), False),
    "dic_obs": ("concentration", (1700.0, 2600.0), False),
    "alk_obs": ("concentration", (1800.0, 2800.0), False),
    "doc_obs": ("concentration", (30.0, 200.0), False),
    # anthropogenic CO2 removed from observed DIC (a full field with small negative artefacts)
    "dic_ant": ("concentration", (-20.0, 200.0), False),
}
#: a model box counts as observed when data cover at least this fraction of it (binned observations only:
#: a sliver of a neighbouring layer's data, e.g. from float32 depth bounds, is not an observation of the box)
MIN_OBSERVED_COVERAGE = 0.5
#: model units of each kind
KIND_UNITS = {"concentration": "mmol m-3", "temperature": "degC", "salinity": "1"}


@dataclass
class ModelField:
    name: str
    values: np.ndarray        #: (nlat, nlon, nz) in model units, NaN on land (and unobserved if not filled)
    n_obs: np.ndarray         #: (nlat, nlon, nz) source cells per box (overlap-weighted)
    filled: np.ndarray        #: (nlat, nlon, nz) bool, value is the fill, not data
    units: str
    source: str
    source_units: str


def bin_field(path, variable, grid, *, name, units=None, density=None, fill=None) -> ModelField:
    """Bin one NetCDF climatology onto ``grid`` as model field ``name`` (a key of :data:`FIELDS`)."""
    if name not in FIELDS:
        raise InputError(f"unknown model field '{name}' (known: {sorted(FIELDS)})", path=path, variable=variable)
    kind, _, needs = FIELDS[name]
    f = read_variable(path, variable, units=units)
    key = canonical_units(f.units, path=path, variable=variable)
    check_kind(key, kind, path=path, variable=variable, original=f.units)
    v = f.values
    if "time" in f.dims:
        if v.shape[0] != 1:
            v = np.nanmean(v, axis=0)
        else:
            v = v[0]
    if f.depth_edges is None:
        raise InputError(f"expected a 3-D (depth, lat, lon) field, got dimensions {f.dims}", path=path, variable=variable)
    if not np.isfinite(v).any():
        raise InputError("every value is missing", path=path, variable=variable)
    dst_z = np.concatenate([grid.zw, [grid.zw[-1] + grid.dz[-1]]])
    b = conservative_bin(v, f.lat_edges, f.lon_edges, model_lat_edges(grid.lat), model_lon_edges(grid.lon),
                         f.depth_edges, dst_z)
    mask = grid.mask
    val = np.where(mask, b.value, np.nan)
    if name.endswith("_obs"):
        val = np.where(b.coverage >= MIN_OBSERVED_COVERAGE, val, np.nan)
    if kind == "concentration" and key == "umol/kg":
        rho = density if density is not None else None
        val = to_model_units(val, key, kind, rho)
    else:
        val = to_model_units(val, key, kind)
    _check_range(name, val[mask], path, variable, f.units)
    do_fill = needs if fill is None else bool(fill)
    if do_fill:
        val, filled = fill_wet(val, mask)
    else:
        filled = np.zeros(mask.shape, bool)
    return ModelField(name=name, values=val, n_obs=np.where(mask, b.n_obs, 0.0), filled=filled,
                      units=KIND_UNITS[kind], source=f"{path}:{variable}", source_units=str(f.units))


def _check_range(name, wet_values, path, variable, source_units):
    """Impossible values (a negative concentration or salinity; in a climatology the model is forced with, more
    than 1 % of the wet boxes outside the physical range) are an error; other outliers a warning (binned
    observations keep them: the misfit's outlier filter, spec §A.1, decides)."""
    kind, (lo, hi), _ = FIELDS[name]
    v = wet_values[np.isfinite(wet_values)]
    if not v.size:
        return
    negative = int((v < 0).sum()) if kind in ("concentration", "salinity") and lo >= 0 else 0
    out = int(((v < lo) | (v > hi)).sum())
    detail = f"range {v.min():.4g}..{v.max():.4g} {KIND_UNITS[kind]} (source units '{source_units}')"
    if negative:
        raise InputError(f"{negative} negative values of {name} after binning ({detail}): a concentration cannot "
                         "be negative; check the variable and its units", path=path, variable=variable)
    if out > 0.01 * v.size and not name.endswith("_obs"):
        raise InputError(f"{out} of {v.size} binned values of {name} ({100 * out / v.size:.1f} %) outside the physical "
                         f"range {lo:g}..{hi:g} ({detail}); check the variable and its units",
                         path=path, variable=variable)
    if out:
        import logging
        logging.getLogger(__name__).warning("%s:%s: %d binned values of %s outside %g..%g (%s)", path, variable, out,
                                            name, lo, hi, detail)


def insitu_density(grid, temperature3d, salinity3d):
    """In-situ density (kg m^-3) on the model grid from binned T (deg C) and S."""
    zt = np.broadcast_to(grid.zt[None, None, :], grid.shape)
    return seawater_density(temperature3d, salinity3d, zt)
