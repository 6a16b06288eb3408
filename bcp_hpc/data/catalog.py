"""Pre-binned OCIM2 observation files (``../shared/data/ocim2_91x180x24`` layout) behind the same API
as a built input file: ``fields()``, ``field(name, grid)`` (model units, natural wet order),
``npp_products()``.

Each entry says which file and variable holds a model field, its units, its "no data"
convention (NaN or -9.999) and whether it is a complete climatology (``full``: finite at
every wet box) or binned observations (NaN where unobserved).  Concentrations in
umol kg^-1 are converted with the in-situ density of the directory's own temperature and
salinity (EOS-80, :func:`bcp_hpc.data.units.seawater_density`), else 1025 kg m^-3.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io import matfile
from .units import seawater_density, to_model_units


@dataclass(frozen=True)
class Entry:
    file: str
    variable: str
    units: str          #: canonical units key (data.units)
    kind: str           #: concentration | temperature | salinity | areal_flux
    full: bool          #: complete climatology (True) or binned observations (False)
    nodata: float | None = None
    reduce_last: bool = False   #: nanmean over a 4th axis (GLODAPv2 DIC bins)
    description: str = ""


CATALOG = {
    "po4": Entry("po4obs_91x180x24.mat", "po4obs", "umol/kg", "concentration", True, description="WOA13 phosphate"),
    "o2": Entry("o2obs_91x180x24.mat", "o2obs", "ml/l", "concentration", True, description="WOA13 oxygen"),
    "si": Entry("Siobs_91x180x24.mat", "Siobs", "umol/kg", "concentration", True, description="WOA13 silicate"),
    "temperature": Entry("tempobs_91x180x24.mat", "tempobs", "degC", "temperature", True,
                         description="WOA13 temperature"),
    "salinity": Entry("Sobs_91x180x24.mat", "Sobs", "psu", "salinity", True, description="WOA13 salinity"),
    "alk": Entry("GLODAPv2_talk_91x180x24.mat", "talk", "umol/kg", "concentration", True,
                 description="GLODAPv2 mapped alkalinity"),
    "po4_woa18": Entry("O2_Nut_WOA_91x180x24.mat", "DIP_obs", "umol/kg", "concentration", True,
                       description="WOA18 phosphate"),
    "o2_woa18": Entry("O2_Nut_WOA_91x180x24.mat", "O2_obs", "umol/kg", "concentration", True,
                      description="WOA18 oxygen"),
    "no3": Entry("O2_Nut_WOA_91x180x24.mat", "DIN_obs", "umol/kg", "concentration", True, description="WOA18 nitrate"),
    "si_woa18": Entry("O2_Nut_WOA_91x180x24.mat", "Si_obs", "umol/kg", "concentration", True,
                      description="WOA18 silicate"),
    "temperature_woa18": Entry("TS_WOA_91x180x24.mat", "tempobs", "degC", "temperature", True,
                               description="WOA18 temperature"),
    "salinity_woa18": Entry("TS_WOA_91x180x24.mat", "salobs", "psu", "salinity", True, description="WOA18 salinity"),
    "po4_obs": Entry("GLODAPv2_91x180x24raw.mat", "po4raw", "umol/kg", "concentration", False,
                     description="GLODAPv2 bottle phosphate, binned"),
    "o2_obs": Entry("GLODAPv2_91x180x24raw.mat", "o2raw", "umol/kg", "concentration", False,
                    description="GLODAPv2 bottle oxygen, binned"),
    "dic_obs": Entry("GLODAPv2_91x180x24raw.mat", "dicraw", "umol/kg", "concentration", False,
                     description="GLODAPv2 bottle DIC, binned"),
    "alk_obs": Entry("GLODAPv2_91x180x24raw.mat", "alkraw", "umol/kg", "concentration", False, nodata=-9.999,
                     description="GLODAPv2 bottle alkalinity, binned"),
    "dic": Entry("GLODAPv2_DIC_remove_cant.mat", "gc12new", "umol/kg", "concentration", False, reduce_last=True,
                 description="GLODAPv2 DIC minus anthropogenic CO2 (mean of 31 bins)"),
    "dop_obs": Entry("DOPobs_91x180x24.mat", "DOPobs", "umol/kg", "concentration", False, description="DOPv2021"),
    "doc_obs": Entry("DOCobs_Feb2022_91x180x24.mat", "DOCobs", "umol/kg", "concentration", False, nodata=-9.999,
                     description="Hansell DOC compilation"),
    "poc_flux_traps": Entry("Mouw_POC_91x180x24.mat", "POC_flux", "mgC/m2/d", "areal_flux", False, nodata=-9.999,
                            description="Mouw et al. 2016 POC flux, binned by trap depth"),
}
MASK_FILE = "M3d91x180x24.mat"
#: surface forcing of the folder: name -> (file, variable, layout); "map" (nlat, nlon) or "vector" (wet order)
SURFACE_CATALOG = {
    "piston_velocity": ("kw660_91x180.mat", "Kw660", "map"),        # m s-1 at Sc 660
    "sea_level_pressure": ("kw660_91x180.mat", "p4", "map"),        # atm
    "pme": ("PME_TS_91x180x24.mat", "pme", "vector"),               # s-1, surface boxes only
}


class Ocim2Directory:
    """A directory of pre-binned OCIM2 ``.mat`` fields."""

    def __init__(self, path: str):
        if not os.path.isdir(path):
            raise InputError("not a directory", path=path)
        self.path = path

    def file(self, name):
        return os.path.join(self.path, CATALOG[name].file)

    def fields(self):
        return sorted(n for n in CATALOG if os.path.exists(self.file(n)))

    def npp_products(self):
        return []  # satellite NPP is not part of the pre-binned OCIM2 folder

    def surface_fields(self):
        return sorted(n for n, (f, _, _) in SURFACE_CATALOG.items() if os.path.exists(os.path.join(self.path, f)))

    def surface(self, name, grid) -> np.ndarray:
        """A surface forcing map (nlat, nlon) in model units.  Negative piston velocities (interpolation
        artefacts of the regridded OCMIP-2 field) become 0; wet columns without a value are filled."""
        from .fill import fill_wet
        from .surface import check_surface
        file, var, layout = SURFACE_CATALOG[name]
        p = os.path.join(self.path, file)
        a = np.asarray(matfile.get(matfile.load(p, [var]), var, p), dtype=float)
        surf = grid.mask[:, :, 0]
        if layout == "vector":
            if a.size != grid.nwet:
                raise InputError(f"expected {grid.nwet} values (one per wet box), got {a.size}", path=p, variable=var)
            top = grid.box_k == 0
            a = grid.surface_to2d(a.ravel()[top])
        elif a.shape != surf.shape:
            raise InputError(f"shape {a.shape} differs from the grid's surface {surf.shape}", path=p, variable=var)
        if name == "piston_velocity":
            a = np.where(a < 0, 0.0, a)
        a, _ = fill_wet(np.where(surf, a, np.nan), surf)
        check_surface(a, name, grid, p)
        return np.where(surf, a, np.nan)

    def filled(self, name, grid) -> np.ndarray:
        """The folder's fields carry no fill flags (binned observations are NaN where unobserved)."""
        return np.zeros(grid.nwet, bool)

    def trap_fluxes(self, grid):
        """Binned sediment-trap POC flux (Mouw et al. 2016) per box, (nlat, nlon, nz), or None."""
        if "poc_flux_traps" not in self.fields():
            return None
        raw = self.raw("poc_flux_traps")
        raw[(raw < 0) | ~grid.mask] = np.nan           # land boxes carry values too
        return raw

    def esm_epc100(self, grid) -> dict:
        """An OCIM2 data folder has no Earth-system-model fields."""
        return {}

    def grid(self):
        from ..grid.ocim2 import read_grid
        return read_grid(os.path.join(self.path, MASK_FILE))

    def raw(self, name):
        """The 3-D array as stored (source units), with the no-data value turned into NaN."""
        if name not in CATALOG:
            raise InputError(f"unknown field '{name}' (known: {sorted(CATALOG)})", path=self.path)
        e = CATALOG[name]
        p = self.file(name)
        if not os.path.exists(p):
            raise InputError("file not found", path=p, variable=e.variable)
        d = matfile.load(p, [e.variable])
        a = np.asarray(matfile.get(d, e.variable, p), dtype=float)
        if e.reduce_last:
            if a.ndim != 4:
                raise InputError(f"expected 4-D (lat, lon, depth, bin), got {a.shape}", path=p, variable=e.variable)
            with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as sup:
                sup.filter(RuntimeWarning)
                a = np.nanmean(a, axis=3)
        if e.nodata is not None:
            a = np.where(np.isclose(a, e.nodata), np.nan, a)
        return a

    def _density(self, grid):
        """In-situ density (kg m^-3) from this folder's T and S, computed once per grid (None without them)."""
        key = id(grid)
        if getattr(self, "_rho_key", None) != key:
            try:
                T = grid.from3d(self.raw("temperature"))
                S = grid.from3d(self.raw("salinity"))
                self._rho = seawater_density(np.maximum(T, -2.0), S, grid.box_zt)
            except InputError:
                self._rho = None
            self._rho_key = key
        return self._rho

    def to_model_units(self, name, raw3d, grid) -> np.ndarray:
        """The wet-box n-vector of ``raw3d`` (as returned by :meth:`raw`) in model units."""
        e = CATALOG[name]
        v = grid.from3d(raw3d, name=e.variable, path=self.file(name))
        rho = self._density(grid) if e.units == "umol/kg" else None
        return to_model_units(v, e.units, e.kind, rho)

    def field(self, name, grid) -> np.ndarray:
        if name not in CATALOG:
            raise InputError(f"unknown field '{name}' (known: {sorted(CATALOG)})", path=self.path)
        return self.to_model_units(name, self.raw(name), grid)

    def close(self):
        """Nothing to release (files are read per call); present so both sources work in ``with``."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_data(path: str):
    """An :class:`~bcp_hpc.data.inputs.InputsFile` (HDF5 file) or an :class:`Ocim2Directory` (folder)."""
    if os.path.isdir(path):
        return Ocim2Directory(path)
    from .inputs import InputsFile
    return InputsFile(path)
