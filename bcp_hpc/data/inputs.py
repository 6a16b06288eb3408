"""The model-grid input file (HDF5, named dimensions and units attributes, readable by xarray).

Layout (dimensions ``lat``, ``lon``, ``depth``, ``station``)::

    mask(lat, lon, depth) uint8       area(lat, lon) m2        dz(depth) m
    <field>(lat, lon, depth)          model units; NaN on land and, for observation-only fields, where unobserved
    <field>_n_obs(lat, lon, depth)    source cells per box (misfit weights)
    <field>_filled(lat, lon, depth)   1 where the value is the documented fill, not data
    npp_<product>(lat, lon)           mg C m-2 d-1; npp_<product>_filled(lat, lon)
    piston_velocity(lat, lon) m s-1, sea_level_pressure(lat, lon) atm, pme(lat, lon) s-1 (surface forcing)
    epc100_<model>(lat, lon)          mg C m-2 d-1
    trap_lat/lon/depth/flux/n_records/station/box/in_model(station)

Global attributes: ``grid_name``, ``grid_shape``, ``grid_mask_sha256`` (checked on load: a file
built for another grid is refused), ``bcp_hpc_version``, ``recipe`` (the TOML it was built from).
"""
from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np

from .. import __version__
from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.netcdf_h5 import DimensionedWriter


def mask_fingerprint(mask) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(mask, dtype=np.uint8)).tobytes()).hexdigest()


def write_inputs(path: str, grid, *, fields=(), npp=None, traps=None, esm=None, forcing=None, recipe: str = "",
                 sources=None):
    """Write an input file atomically.  ``fields``: iterable of :class:`~bcp_hpc.data.climatology.ModelField`;
    ``npp``: product -> result of :func:`~bcp_hpc.data.npp.npp_climatology`; ``traps``: a
    :class:`~bcp_hpc.data.traps.TrapTable`; ``esm``: name -> result of :func:`~bcp_hpc.data.esm.epc100_climatology`;
    ``forcing``: name -> (nlat, nlon) surface forcing in model units (:mod:`~bcp_hpc.data.surface`).
    """
    from .surface import SURFACE
    with atomic_path(path, ".h5") as tmp:
        with h5py.File(tmp, "w") as h:
            w = DimensionedWriter(h)
            w.dimension("lat", grid.lat, "degrees_north", standard_name="latitude")
            w.dimension("lon", grid.lon, "degrees_east", standard_name="longitude")
            w.dimension("depth", grid.zt, "m", positive="down", standard_name="depth")
            w.variable("mask", grid.mask.astype(np.uint8), ("lat", "lon", "depth"), "1",
                       long_name="wet mask (1 = ocean)")
            w.variable("area", grid.area2d, ("lat", "lon"), "m2", long_name="horizontal box area")
            w.variable("dz", grid.dz, ("depth",), "m", long_name="layer thickness")
            for f in fields:
                w.variable(f.name, f.values, ("lat", "lon", "depth"), f.units, source=f.source,
                           source_units=f.source_units)
                w.variable(f.name + "_n_obs", f.n_obs, ("lat", "lon", "depth"), "1",
                           long_name="source data cells per box (overlap-weighted)")
                w.variable(f.name + "_filled", f.filled.astype(np.uint8), ("lat", "lon", "depth"), "1",
                           long_name="1 = value is the fill (bcp_hpc.data.fill), not data")
            for prod, r in (npp or {}).items():
                w.variable(f"npp_{prod}", r["npp"], ("lat", "lon"), "mg C m-2 d-1", product=prod,
                           years=np.asarray(r["years"], dtype=np.int64), n_files=len(r["files"]),
                           method="monthly gap rule of Wu et al. 2025 s2.1, annual mean, area-conservative binning")
                w.variable(f"npp_{prod}_filled", r["filled"].astype(np.uint8), ("lat", "lon"), "1")
            for name, arr in (forcing or {}).items():
                w.variable(name, np.asarray(arr, dtype=float), ("lat", "lon"), SURFACE[name][0],
                           long_name=name.replace("_", " "))
            for name, r in (esm or {}).items():
                w.variable(f"epc100_{name}", r["epc100"], ("lat", "lon"), r["units"], model=name,
                           years=json.dumps(r["years"]), n_records=r["n_records"])
            if traps is not None and len(traps):
                w.dimension("station", np.arange(len(traps)), "1")
                for k, u in (("lat", "degrees_north"), ("lon", "degrees_east"), ("depth", "m"),
                             ("flux", "mg C m-2 d-1"), ("n_records", "1"), ("box", "1")):
                    w.variable(f"trap_{k}", getattr(traps, k), ("station",), u)
                w.variable("trap_in_model", traps.in_model.astype(np.uint8), ("station",), "1")
                w.variable("trap_station", traps.station, ("station",), None)
                h["trap_flux"].attrs["source"] = traps.path
            h.attrs["grid_name"] = grid.name
            h.attrs["grid_shape"] = np.asarray(grid.shape, dtype=np.int64)
            h.attrs["grid_mask_sha256"] = mask_fingerprint(grid.mask)
            h.attrs["bcp_hpc_version"] = __version__
            h.attrs["recipe"] = recipe
            h.attrs["sources"] = json.dumps(sources or {})
            h.attrs["Conventions"] = "CF-1.8"


def model_units(name: str):
    """The units a model field of this name has in an input file (None: not a known field)."""
    from .climatology import FIELDS, KIND_UNITS
    base = name.removesuffix("_obs")
    if base in FIELDS:
        return KIND_UNITS[FIELDS[base][0]]
    return None


class InputsFile:
    """Reader of an input file written by :func:`write_inputs`."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.h = h5py.File(path, "r")
        except FileNotFoundError as exc:
            raise InputError("file not found", path=path) from exc
        except OSError as exc:
            raise InputError(f"not a readable HDF5 input file (truncated or corrupt?): {exc}", path=path) from exc
        if "grid_mask_sha256" not in self.h.attrs or "mask" not in self.h:
            self.h.close()
            raise InputError("not a bcp-hpc input file (no grid fingerprint / mask)", path=path)

    def close(self):
        self.h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def grid_shape(self):
        return tuple(int(x) for x in self.h.attrs["grid_shape"])

    def check_grid(self, grid):
        """The file was built for ``grid``: its recorded fingerprint and its mask dataset both match."""
        if getattr(self, "_checked", None) is grid:
            return
        fp = self.h.attrs["grid_mask_sha256"]
        fp = fp.decode() if isinstance(fp, bytes) else str(fp)
        if tuple(grid.shape) != self.grid_shape or fp != mask_fingerprint(grid.mask):
            raise InputError(f"built for another grid ({self.h.attrs['grid_name']}, shape {self.grid_shape}); "
                             f"the run's grid is {grid.name}, shape {grid.shape}", path=self.path)
        stored = np.asarray(self.h["mask"][()])
        if stored.shape != grid.shape or not np.array_equal(stored.astype(bool), grid.mask):
            raise InputError("its mask dataset differs from the grid it records (the file was altered after "
                             "`bcp-hpc data build`); build it again", path=self.path, variable="mask")
        self._checked = grid

    def fields(self):
        """Names of the 3-D model fields in the file."""
        return sorted(k for k, d in self.h.items() if getattr(d, "ndim", 0) == 3 and k != "mask"
                      and not k.endswith(("_n_obs", "_filled")))

    def npp_products(self):
        return sorted(k[4:] for k in self.h if k.startswith("npp_") and not k.endswith("_filled"))

    def surface_fields(self):
        """Names of the surface forcing maps in the file."""
        from .surface import SURFACE
        return sorted(k for k in SURFACE if k in self.h)

    def surface(self, name, grid) -> np.ndarray:
        """A surface forcing map (nlat, nlon) in model units (checked)."""
        from .surface import SURFACE, check_surface
        self.check_grid(grid)
        self._check_units(name, SURFACE[name][0])
        arr = np.asarray(self.array(name), dtype=float)
        check_surface(arr, name, grid, self.path)
        return arr

    def filled(self, name, grid) -> np.ndarray:
        """n-vector, True where ``name``'s value is the fill, not data (False when the file has no such flag)."""
        if name + "_filled" not in self.h:
            return np.zeros(grid.nwet, bool)
        return grid.from3d(np.asarray(self.array(name + "_filled"))).astype(bool)

    def trap_fluxes(self, grid) -> np.ndarray | None:
        """Mean trap flux per model box (nlat, nlon, nz, mg C m-2 d-1, NaN = none), or None without traps."""
        if "trap_flux" not in self.h:
            return None
        self.check_grid(grid)
        t = self.traps()
        ok = t["in_model"] > 0
        box = t["box"][ok].astype(np.int64)
        s = np.zeros(grid.nwet)
        c = np.zeros(grid.nwet)
        np.add.at(s, box, t["flux"][ok])
        np.add.at(c, box, 1.0)
        with np.errstate(invalid="ignore"):
            return grid.to3d(np.where(c > 0, s / np.maximum(c, 1.0), np.nan))

    def esm_epc100(self, grid) -> dict:
        """Earth-system models' POC flux at 100 m (name -> (nlat, nlon) mg C m-2 d-1), the [esm.*] of the recipe."""
        self.check_grid(grid)
        out = {}
        for name in sorted(k for k in self.h if k.startswith("epc100_")):
            arr = np.asarray(self.h[name][()], dtype=float)
            self._check_units(name, "mg C m-2 d-1")
            out[name[len("epc100_"):]] = np.where(grid.mask[:, :, 0], arr, np.nan)
        return out

    def units(self, name):
        u = self.h[name].attrs.get("units", "")
        return u.decode() if isinstance(u, bytes) else str(u)

    def array(self, name, sel=()):
        if name not in self.h:
            raise InputError(f"not in the input file (has: {', '.join(sorted(self.h))})", path=self.path,
                             variable=name)
        return self.h[name][sel] if sel != () else self.h[name][()]

    def field(self, name, grid) -> np.ndarray:
        """A 3-D field as an n-vector in the natural wet order of ``grid`` (model units, checked)."""
        self.check_grid(grid)
        self._check_units(name, model_units(name))
        return grid.from3d(np.asarray(self.array(name), dtype=float), name=name, path=self.path)

    def npp(self, product, grid) -> np.ndarray:
        """NPP map of ``product`` (mg C m-2 d-1, checked)."""
        self.check_grid(grid)
        name = f"npp_{product}"
        self._check_units(name, "mg C m-2 d-1")
        arr = np.asarray(self.array(name))
        if arr.shape != grid.shape[:2] or not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"expected a {grid.shape[:2]} map of numbers, got shape {arr.shape}, type {arr.dtype}",
                             path=self.path, variable=name)
        return arr.astype(float)

    def _check_units(self, name, want):
        got = self.units(name)
        if want is not None and got != want:
            raise InputError(f"units '{got}', expected '{want}' (the model units `bcp-hpc data build` writes)",
                             path=self.path, variable=name)

    def traps(self):
        if "trap_flux" not in self.h:
            raise InputError("has no sediment-trap table", path=self.path, variable="trap_flux")
        out = {k: self.h[f"trap_{k}"][()] for k in ("lat", "lon", "depth", "flux", "n_records", "box", "in_model")}
        out["station"] = np.array([s.decode() if isinstance(s, bytes) else s for s in self.h["trap_station"][()]])
        return out
