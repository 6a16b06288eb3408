"""The embedded default world: a procedurally generated, reproducible Earth-like coarse ocean.

4 degree x 4 degree (45 x 90 columns) with OCIM2's 24 layers.  Continents are
idealised shapes of the Americas, Afro-Eurasia, Australia, Antarctica and
Greenland, so the ocean has Atlantic-, Pacific- and Indian-like basins, a
circumpolar channel, an Arctic sea and shelves; bathymetry has mid-ocean
ridges.  The same inputs always give the same world (no randomness beyond a
fixed-seed roughness).  Fields shipped with it (synthetic, generated here):

* satellite-like column NPP (mg C m^-2 d^-1) and two alternative "products";
* an observed-phosphate-like climatology (mmol m^-3) used in the uptake term;
* a temperature climatology (deg C).
"""
from __future__ import annotations

import numpy as np

from .grid import Grid, ocim2_vertical_grid, regular_latlon_grid


def _wrap(lon):
    return np.mod(lon, 360.0)


def _in_lon(lon, a, b):
    lon = _wrap(lon)
    a, b = _wrap(a), _wrap(b)
    return (lon >= a) & (lon <= b) if a <= b else (lon >= a) | (lon <= b)


def land_mask(lat2, lon2) -> np.ndarray:
    """Idealised continents on a lat/lon mesh (bool, True = land)."""
    L, X = lat2, _wrap(lon2)
    land = np.zeros(L.shape, bool)
    land |= L < -68                                                    # Antarctica
    land |= L > 80                                                     # Arctic ice cap / land
    # North America: 15-72 N, west coast tilting from 235 E (north) to 255 E (south)
    west = 235 + (60 - np.clip(L, 15, 60)) * 0.45
    east = 300 - (60 - np.clip(L, 15, 60)) * 0.5
    land |= (L >= 15) & (L <= 72) & (X >= west) & (X <= east)
    land |= (L >= 8) & (L < 15) & (X >= 265) & (X <= 280)             # Central America
    # South America: 12 N - 56 S, narrowing to the south
    w2 = 280 + np.clip(-L, 0, 56) * 0.12
    e2 = 325 - np.clip(-L - 5, 0, 51) * 0.45
    land |= (L <= 12) & (L >= -56) & (X >= w2) & (X <= e2)
    # Greenland
    land |= (L >= 60) & (L <= 80) & (X >= 300) & (X <= 340)
    # Africa: 36 N - 35 S
    ae = np.where(L > 10, 50.0, 40.0 - np.clip(-L, 0, 35) * 0.4)
    africa = (L <= 36) & (L >= -35) & (_in_lon(X, 343, 360) & (L > 5) | (X >= np.where(L > 5, 0, 8)) & (X <= ae))
    land |= africa & ~((X > 60) & (X < 340))
    # Eurasia: 36-78 N from 350 E to 190 E; India and south-east Asia
    land |= (L >= 36) & (L <= 78) & _in_lon(X, 355, 190)
    land |= (L >= 8) & (L < 36) & (X >= 40) & (X <= 120)
    land |= (L >= -8) & (L < 8) & (X >= 95) & (X <= 118)              # maritime continent (partial)
    # Australia
    land |= (L >= -40) & (L <= -12) & (X >= 114) & (X <= 153)
    # keep a Mediterranean-free, simple Atlantic; open Drake Passage (56-68 S)
    return land


def bathymetry_m(lat2, lon2, land) -> np.ndarray:
    """Ocean depth (m) with shelves near coasts and mid-ocean ridges."""
    from scipy.ndimage import distance_transform_edt
    # distance to land in grid cells (periodic in longitude: pad)
    pad = land.shape[1] // 4
    lp = np.concatenate([land[:, -pad:], land, land[:, :pad]], axis=1)
    dist = distance_transform_edt(~lp)[:, pad:-pad]
    depth = 5200.0 * (1 - np.exp(-(dist - 0.5) / 1.3))
    X = _wrap(lon2)
    # Mid-Atlantic ridge following the basin centre, East Pacific Rise, Indian ridges
    ridge = np.exp(-((X - (335 - 0.15 * lat2)) / 8.0) ** 2) * (np.abs(lat2) < 65)
    ridge += np.exp(-((X - 250) / 10.0) ** 2) * (lat2 < 10) * (lat2 > -60)
    ridge += np.exp(-((X - 70) / 10.0) ** 2) * (lat2 < 0) * (lat2 > -50)
    depth = depth - 2200.0 * ridge
    rng = np.random.default_rng(20251124)
    depth *= 1 + 0.05 * rng.standard_normal(depth.shape)
    depth = np.clip(depth, 120.0, 5600.0)
    depth[land] = 0.0
    return depth


#: the generated worlds by name: (latitudes, longitudes, layers); the same land and bathymetry at every
#: spacing.  ``generated-2.5deg`` sits between the embedded world and OCIM2's size (a third size for the
#: planner's joint-model law), ``generated-2deg`` has OCIM2's spacing (benchmarks without data).
GENERATED_GRIDS = {"embedded": (45, 90, 24), "tiny": (15, 30, 8), "generated-2.5deg": (73, 144, 24),
                   "generated-2deg": (91, 180, 24)}


def generated_grid(name: str) -> Grid:
    """The generated grid ``name`` (a key of :data:`GENERATED_GRIDS`)."""
    nlat, nlon, nz = GENERATED_GRIDS[name]
    return embedded_grid(nlat=nlat, nlon=nlon, nz=nz)


def embedded_grid(nlat: int = 45, nlon: int = 90, nz: int = 24) -> Grid:
    """The embedded default grid (reproducible)."""
    lat, lon = regular_latlon_grid(nlat, nlon)
    zw, zt, dz = ocim2_vertical_grid(nz)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    land = land_mask(lat2, lon2)
    depth = bathymetry_m(lat2, lon2, land)
    # wet layers: centre above the sea floor; at least 2 wet layers in every ocean column
    kmt = (zt[None, None, :] < depth[:, :, None]).sum(axis=2)
    kmt = np.where(land, 0, np.maximum(kmt, 2))
    mask = np.arange(nz)[None, None, :] < kmt[:, :, None]
    # remove isolated one-column lakes (no horizontal wet neighbour) for a tidy world
    surf = mask[:, :, 0]
    nb = (np.roll(surf, 1, 1) | np.roll(surf, -1, 1) | np.vstack([surf[1:], np.zeros((1, nlon), bool)])
          | np.vstack([np.zeros((1, nlon), bool), surf[:-1]]))
    mask &= (nb & surf)[:, :, None]
    basins = _basins(lat2, lon2, mask)
    return Grid(mask=mask, lat=lat, lon=lon, zw=zw, zt=zt, dz=dz, basins=basins,
                name=f"embedded-{nlat}x{nlon}x{nz}")


def _basins(lat2, lon2, mask):
    X = _wrap(lon2)
    atl = (_in_lon(X, 290, 20) & (lat2 < 66)) | (_in_lon(X, 262, 20) & (lat2 >= 8) & (lat2 < 66))
    atl &= ~((lat2 >= 8) & (lat2 < 30) & (X < 265) & (X > 180))
    ind = (X > 20) & (X < 147) & (lat2 < 30) & ~atl
    arc = lat2 >= 66
    pac = ~atl & ~ind & ~arc
    out = {}
    for name, b in (("ATL", atl), ("PAC", pac), ("IND", ind), ("ARC", arc)):
        out[name] = mask & b[:, :, None]
    return out


# ---------------------------------------------------------------------------- fields
#: global totals of the three synthetic NPP products (Pg C yr^-1)
NPP_TARGET_PG_C_PER_YR = {"vgpm": 52.0, "cbpm": 48.5, "cafe": 58.5}


def synthetic_npp(grid: Grid, product: str = "vgpm") -> np.ndarray:
    """Satellite-like annual column NPP (mg C m^-2 d^-1) on the surface (nlat, nlon); NaN on land.

    Three products differ the way the real ones do: ``vgpm`` (high in coastal/upwelling
    regions), ``cbpm`` (flatter, more subtropical), ``cafe`` (strong high latitudes); each is
    scaled so that its global total on any grid is :data:`NPP_TARGET_PG_C_PER_YR` (VGPM 52,
    CbPM 48.5, CAFE 58.5 Pg C yr^-1, the spread of the satellite products).
    """
    lat2, lon2 = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    X = _wrap(lon2)
    surf = grid.mask[:, :, 0]
    from scipy.ndimage import distance_transform_edt
    pad = surf.shape[1] // 4
    lp = np.concatenate([~surf[:, -pad:], ~surf, ~surf[:, :pad]], axis=1)
    coast = np.exp(-distance_transform_edt(~lp)[:, pad:-pad] / 1.5)
    eq = np.exp(-(lat2 / 6.0) ** 2) * (1 + 0.8 * np.exp(-((X - 260) / 25.0) ** 2))
    gyre = np.exp(-((np.abs(lat2) - 25) / 9.0) ** 2)
    highlat = np.exp(-((np.abs(lat2) - 50) / 10.0) ** 2)
    so = np.exp(-((lat2 + 62) / 6.0) ** 2)
    params = {"vgpm": (420, 350, 500, 200, -230, 220), "cbpm": (420, 420, 150, 100, -80, 120),
              "cafe": (380, 300, 250, 450, -150, 420)}
    if product not in params:
        raise ValueError(f"unknown NPP product '{product}' (choose vgpm, cbpm or cafe)")
    base, eqa, coa, hla, gya, soa = params[product]
    npp = base + eqa * eq + coa * coast + hla * highlat + gya * gyre + soa * so
    npp = np.clip(npp, 60.0, None)
    npp = np.where(np.abs(lat2) > 75, 0.3 * npp, npp)
    npp = np.where(surf, npp, np.nan)
    total = np.nansum(npp * grid.area2d) * 365.0 / 1e18   # mg C m-2 d-1 * m2 -> Pg C yr-1
    return npp * (NPP_TARGET_PG_C_PER_YR[product] / total)


def synthetic_phosphate(grid: Grid) -> np.ndarray:
    """Observed-phosphate-like climatology (mmol m^-3), n-vector in natural order."""
    lat = grid.box_lat
    z = grid.box_zt
    surf = 0.15 + 1.3 * np.exp(-((lat + 62) / 10.0) ** 2) + 0.5 * np.exp(-((lat - 55) / 10.0) ** 2) \
        + 0.35 * np.exp(-(lat / 6.0) ** 2)
    deep = 2.3 + 0.6 * np.clip((lat + 40) / 100.0, 0, 1)
    prof = 1 - np.exp(-z / 600.0)
    return surf + (deep - surf) * prof


def synthetic_temperature(grid: Grid) -> np.ndarray:
    """Temperature climatology (deg C), n-vector in natural order."""
    lat = grid.box_lat
    z = grid.box_zt
    sst = -1.5 + 29.5 * np.exp(-(lat / 32.0) ** 2)
    return 1.5 + (sst - 1.5) * np.exp(-z / 700.0)


def synthetic_salinity(grid: Grid) -> np.ndarray:
    """Salinity climatology (PSS-78), n-vector: saltier subtropics, fresher high latitudes, 34.7 at depth."""
    lat = grid.box_lat
    sss = 34.0 + 1.6 * np.exp(-((np.abs(lat) - 25.0) / 12.0) ** 2) - 0.8 * np.exp(-((np.abs(lat) - 65.0) / 10.0) ** 2)
    return 34.7 + (sss - 34.7) * np.exp(-grid.box_zt / 500.0)


def synthetic_silicate(grid: Grid) -> np.ndarray:
    """Silicate climatology (mmol m^-3), n-vector: high in the Southern Ocean and at depth."""
    lat = grid.box_lat
    surf = 2.0 + 50.0 * np.exp(-((lat + 62.0) / 8.0) ** 2) + 10.0 * np.exp(-((lat - 55.0) / 10.0) ** 2)
    deep = 90.0 + 60.0 * np.clip((lat + 40.0) / 100.0, 0.0, 1.0)
    return surf + (deep - surf) * (1.0 - np.exp(-grid.box_zt / 1000.0))


def synthetic_piston_velocity(grid: Grid) -> np.ndarray:
    """Gas-transfer (piston) velocity for Schmidt number 660 (m s^-1) on (nlat, nlon): windier westerlies."""
    lat2 = np.broadcast_to(grid.lat[:, None], grid.shape[:2])
    kw_cm_h = 12.0 + 14.0 * np.exp(-((np.abs(lat2) - 50.0) / 12.0) ** 2)
    kw_cm_h = np.where(np.abs(lat2) > 70, 0.3 * kw_cm_h, kw_cm_h)          # sea ice
    return np.where(grid.mask[:, :, 0], kw_cm_h / 100.0 / 3600.0, np.nan)


def synthetic_pme(grid: Grid) -> np.ndarray:
    """Virtual freshwater flux P - E over the surface layer (s^-1), n-vector, zero area integral."""
    lat = grid.box_lat
    surf = grid.box_k == 0
    e = 1.2 * np.exp(-(lat / 6.0) ** 2) - 1.0 * np.exp(-((np.abs(lat) - 22.0) / 8.0) ** 2) \
        + 0.8 * np.exp(-((np.abs(lat) - 50.0) / 10.0) ** 2)                  # m yr^-1
    e = np.where(surf, e, 0.0)
    area = grid.box_area
    e = np.where(surf, e - (e * area)[surf].sum() / area[surf].sum(), 0.0)
    return e / (365.0 * 86400.0) / grid.box_dz
