"""The model grid: a regular latitude-longitude grid with z layers and a 3-D wet mask.

Array layout is OCIM2's ``(i_lat, i_lon, k)``.  The *natural* wet-point ordering is
MATLAB's ``iwet = find(M3d(:))``, i.e. column-major (Fortran) order of the 3-D array:
latitude fastest, depth slowest, so the first ``n_surface`` entries are layer 1.
Every n-vector read from or written to OCIM2 files uses this ordering.  The
distributed (PETSc) ordering is a permutation of it, see :mod:`bcp_hpc.grid.layout`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

EARTH_RADIUS_M = 6.371e6
#: Euphotic zone = top two layers (base 73.4 m on OCIM2's vertical grid), spec §1.1.
N_EUPHOTIC_LAYERS = 2


def ocim2_vertical_grid(nz: int = 24, depth_m: float = 5750.0):
    """OCIM2 layer thicknesses ``dz_k = dz_1 (1 + (k-1)^2/32)`` scaled to ``depth_m``.

    Returns ``(zw, zt, dz)`` in m: top-face depths, centres, thicknesses.
    For ``nz`` other than 24 the same quadratic stretching is used with
    ``(k-1)^2/32 * (24/nz)^2`` so that the shape of the profile is kept.
    """
    k = np.arange(nz, dtype=float)
    stretch = (k ** 2) / 32.0 * (24.0 / nz) ** 2
    rel = 1.0 + stretch
    dz = depth_m * rel / rel.sum()
    zw = np.concatenate([[0.0], np.cumsum(dz)[:-1]])
    zt = zw + 0.5 * dz
    return zw, zt, dz


def index_dtype(n: int):
    """The integer type for indices below ``n``: int32 where it fits (half the memory of int64 for
    the per-box index arrays that every rank holds), else int64."""
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def regular_latlon_grid(nlat: int, nlon: int):
    """Centres (deg) of ``nlat`` equal latitude bands from pole to pole and ``nlon`` longitudes from 0 E."""
    dlat = 180.0 / nlat
    dlon = 360.0 / nlon
    lat = -90.0 + (np.arange(nlat) + 0.5) * dlat
    lon = (np.arange(nlon) + 0.5) * dlon
    return lat, lon


@dataclass
class Grid:
    """A masked lat-lon-z grid.

    Attributes
    ----------
    mask : bool array (nlat, nlon, nz)   wet (True) / land.
    lat, lon : 1-D arrays (deg N, deg E) box centres (regular spacing).
    zw, zt, dz : 1-D arrays (m)          layer top depth, centre depth, thickness.
    area2d : (nlat, nlon) m^2            horizontal box area.
    basins : dict name -> bool (nlat, nlon, nz) basin masks (may be empty).
    name : str                           human-readable origin (e.g. file path).
    """

    mask: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    zw: np.ndarray
    zt: np.ndarray
    dz: np.ndarray
    area2d: np.ndarray | None = None
    basins: dict = field(default_factory=dict)
    name: str = "grid"
    n_euphotic_layers: int = N_EUPHOTIC_LAYERS

    def __post_init__(self):
        self.mask = np.asarray(self.mask).astype(bool)
        self.lat = np.asarray(self.lat, dtype=float)
        self.lon = np.asarray(self.lon, dtype=float)
        self.zw = np.asarray(self.zw, dtype=float)
        self.zt = np.asarray(self.zt, dtype=float)
        self.dz = np.asarray(self.dz, dtype=float)
        if self.area2d is None:
            self.area2d = self.default_area2d()
        self.area2d = np.asarray(self.area2d, dtype=float)
        self.validate()
        self._build_indices()

    # ------------------------------------------------------------------ checks
    def validate(self, path: str | None = None):
        m = self.mask
        if m.ndim != 3:
            raise InputError(f"wet mask must be 3-D (lat, lon, depth), got shape {m.shape}",
                             path=path or self.name, variable="M3d")
        nlat, nlon, nz = m.shape
        for nm, arr, n in (("lat", self.lat, nlat), ("lon", self.lon, nlon), ("zt", self.zt, nz),
                           ("zw", self.zw, nz), ("dz", self.dz, nz)):
            if arr.shape != (n,):
                raise InputError(f"expected shape ({n},) to match mask {m.shape}, got {arr.shape}",
                                 path=path or self.name, variable=nm)
            if not np.all(np.isfinite(arr)):
                raise InputError("contains NaN or Inf", path=path or self.name, variable=nm)
        if self.area2d.shape != (nlat, nlon):
            raise InputError(f"expected shape {(nlat, nlon)}, got {self.area2d.shape}",
                             path=path or self.name, variable="area")
        wet2d = m[:, :, 0]
        if not np.all(np.isfinite(self.area2d[wet2d])) or np.any(self.area2d[wet2d] <= 0):
            raise InputError("box areas must be finite and positive at wet points",
                             path=path or self.name, variable="area")
        if np.any(self.dz <= 0):
            raise InputError("layer thicknesses must be positive", path=path or self.name, variable="dz")
        # no overhangs: once land, land below (OCIM2 property; columns must be contiguous)
        if np.any(m[:, :, 1:] & ~m[:, :, :-1]):
            raise InputError("wet box below a land box (overhang); columns must be contiguous from the surface",
                             path=path or self.name, variable="M3d")
        for name, b in self.basins.items():
            if np.asarray(b).shape != m.shape:
                raise InputError(f"basin mask shape {np.asarray(b).shape} differs from M3d {m.shape}",
                                 path=path or self.name, variable=f"MSKS.{name}")

    def default_area2d(self):
        """``A_j = R^2 cos(lat_j) dlon dlat`` (m^2), spec §1.1."""
        dlat = np.deg2rad(180.0 / self.lat.size)
        dlon = np.deg2rad(360.0 / self.lon.size)
        a = EARTH_RADIUS_M ** 2 * np.cos(np.deg2rad(self.lat)) * dlon * dlat
        return np.repeat(a[:, None], self.lon.size, axis=1)

    # ------------------------------------------------------------------ indices
    def _build_indices(self):
        """The per-box arrays every rank holds whole (docs/hpc.md, "What each rank holds"): indices
        in the smallest integer type that fits and the box volume; the other per-box geometry is
        computed from the 1-D axes when asked for (:attr:`box_area`, :attr:`box_lat`, ...)."""
        itype = index_dtype(self.mask.size)
        self.iwet = np.flatnonzero(self.mask.ravel(order="F")).astype(itype)
        ilat, ilon, k = np.unravel_index(self.iwet, self.mask.shape, order="F")
        self.box_ilat = ilat.astype(itype)
        self.box_ilon = ilon.astype(itype)
        self.box_k = k.astype(itype)
        del ilat, ilon, k
        self.box_volume = self.box_area * self.box_dz
        # inverse map: 3-D linear (Fortran) index -> wet index (-1 on land)
        index3d = np.full(self.mask.size, -1, dtype=itype)
        index3d[self.iwet] = np.arange(self.iwet.size, dtype=itype)
        self.wet_index3d = index3d.reshape(self.mask.shape, order="F")
        self.kmt = self.mask.sum(axis=2)  # wet layers per column

    # per-box geometry from the 1-D axes, computed when asked for (not kept: O(wet boxes) each)
    @property
    def box_column(self) -> np.ndarray:
        """2-D column id ``ilat * nlon + ilon`` of every box (natural order)."""
        return self.box_ilat * self.mask.shape[1] + self.box_ilon

    @property
    def box_area(self) -> np.ndarray:
        """Horizontal area of every box (m^2, natural order)."""
        return self.area2d[self.box_ilat, self.box_ilon]

    @property
    def box_dz(self) -> np.ndarray:
        """Thickness of every box (m)."""
        return self.dz[self.box_k]

    @property
    def box_lat(self) -> np.ndarray:
        """Latitude of every box centre (deg N)."""
        return self.lat[self.box_ilat]

    @property
    def box_lon(self) -> np.ndarray:
        """Longitude of every box centre (deg E)."""
        return self.lon[self.box_ilon]

    @property
    def box_zt(self) -> np.ndarray:
        """Depth of every box centre (m)."""
        return self.zt[self.box_k]

    @property
    def box_zw(self) -> np.ndarray:
        """Depth of every box's top face (m)."""
        return self.zw[self.box_k]

    @property
    def shape(self):
        return self.mask.shape

    @property
    def nwet(self) -> int:
        """Number of wet boxes."""
        return int(self.iwet.size)

    @property
    def n_surface(self) -> int:
        return int(self.mask[:, :, 0].sum())

    @property
    def euphotic(self) -> np.ndarray:
        """Bool n-vector: box lies in the euphotic zone (top ``n_euphotic_layers`` layers)."""
        return self.box_k < self.n_euphotic_layers

    @property
    def euphotic_base_m(self) -> float:
        """Depth of the euphotic-zone base (m); 73.4 m on OCIM2's grid."""
        return float(self.zw[self.n_euphotic_layers - 1] + self.dz[self.n_euphotic_layers - 1])

    @property
    def total_volume(self) -> float:
        return float(self.box_volume.sum())

    def basin_vector(self, name: str) -> np.ndarray:
        """Bool n-vector of a basin mask."""
        return np.asarray(self.basins[name]).astype(bool).ravel(order="F")[self.iwet]

    # ------------------------------------------------------------------ 3-D <-> vector
    def to3d(self, vec: np.ndarray, fill=np.nan) -> np.ndarray:
        """Scatter an n-vector (natural order) into a (nlat, nlon, nz) array."""
        out = np.full(self.mask.size, fill, dtype=np.result_type(vec, float))
        out[self.iwet] = vec
        return out.reshape(self.mask.shape, order="F")

    def from3d(self, arr: np.ndarray, name: str = "field", path: str | None = None) -> np.ndarray:
        """Gather the wet points of a (nlat, nlon, nz) array into an n-vector (natural order)."""
        arr = np.asarray(arr)
        if arr.shape != self.mask.shape:
            raise InputError(f"shape {arr.shape} does not match the grid {self.mask.shape}",
                             path=path, variable=name)
        return arr.ravel(order="F")[self.iwet]

    def surface_to2d(self, vec_surface: np.ndarray, fill=np.nan) -> np.ndarray:
        """Scatter a vector over surface wet boxes (natural order) into (nlat, nlon)."""
        out = np.full(self.mask.shape[:2], fill, dtype=float)
        s = self.box_k == 0
        out[self.box_ilat[s], self.box_ilon[s]] = vec_surface
        return out

    def basin_codes(self) -> np.ndarray:
        """Basin code per column (nlat, nlon), see :func:`bcp_hpc.grid.basins.column_basins`."""
        from .basins import column_basins
        return column_basins(self)

    @staticmethod
    def basin_names() -> dict:
        from .basins import BASIN_NAMES
        return dict(BASIN_NAMES)

    def column_sum_map(self, vec: np.ndarray) -> np.ndarray:
        """(nlat, nlon) map of ``sum_k vec * dz`` over each column (per-area integral)."""
        out = np.zeros(self.mask.shape[:2])
        np.add.at(out, (self.box_ilat, self.box_ilon), vec * self.box_dz)
        out[~self.mask[:, :, 0]] = np.nan
        return out

    def summary(self) -> str:
        return (f"{self.name}: {self.shape[0]}x{self.shape[1]}x{self.shape[2]}, {self.nwet} wet boxes, "
                f"{self.n_surface} surface boxes, volume {self.total_volume:.4e} m^3, "
                f"euphotic base {self.euphotic_base_m:.1f} m")
