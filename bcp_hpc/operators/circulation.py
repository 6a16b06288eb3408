"""Synthetic, mass-conserving ocean circulation on any mask.

The volume fluxes are the discrete curl of a vector potential on the grid's
edges, so they are divergence-free on the masked grid *identically* (to
round-off), whatever the potential: the potential is set to a constant on
every edge that touches land or the sea surface / floor, hence no flux crosses
a land face or the surface.  Longitude is periodic.

Two potentials are used (all transports in m^3 s^-1, 1 Sv = 1e6):

* ``A_x`` on zonal edges: a meridional overturning streamfunction per basin,
  split evenly over the basin's longitudes.
  - NADW cell (Atlantic): surface water flows north, sinks between 45 and 65 N
    (``nadw_sv``), returns south at 1500-4000 m and upwells in the Southern
    Ocean between 60 and 45 S.
  - Antarctic bottom-water cell (every basin, ``aabw_sv`` per basin): sinking on
    the Antarctic margin (72-62 S), northward spreading at depth, slow upwelling
    across the basin interior (Stommel-Arons), southward return in the upper ocean.
* ``A_z`` on vertical edges: a horizontal streamfunction with subtropical and
  subpolar gyres (Stommel-like western intensification in each wet segment of
  a latitude row) and an eastward Antarctic Circumpolar Current carried by the
  value of the potential on the Antarctic land mass.

Diffusion: horizontal ``kappa_h`` (default 1e3 m^2 s^-1), vertical ``kappa_v``
(default 1e-5 m^2 s^-1), enhanced in the surface mixed layer and in the
deep-water formation regions (convection), all configurable.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..grid.basins import column_basins
from ..grid.grid import Grid
from .transport import advection_diffusion, divergence

SV = 1.0e6


@dataclass
class CirculationConfig:
    kappa_h: float = 1.0e3          #: horizontal diffusivity, m^2 s^-1
    kappa_v: float = 1.0e-5         #: background vertical diffusivity, m^2 s^-1
    kappa_v_mixed_layer: float = 1.0e-3  #: vertical diffusivity above ``mixed_layer_m``, m^2 s^-1
    mixed_layer_m: float = 60.0     #: mixed-layer depth, m
    kappa_v_convection: float = 3.0e-3  #: vertical diffusivity in deep-water formation regions, m^2 s^-1
    convection_depth_m: float = 2500.0  #: depth of convective mixing, m
    nadw_sv: float = 18.0           #: NADW overturning, Sv
    aabw_sv: float = 12.0           #: bottom-water overturning per basin, Sv
    gyre_sv: float = 30.0           #: subtropical gyre transport, Sv
    acc_sv: float = 130.0           #: Antarctic Circumpolar Current, Sv
    gyre_depth_m: float = 800.0     #: e-folding depth of the gyres, m

    def to_dict(self):
        return asdict(self)


def _smoothstep(x, x0, x1):
    t = np.clip((np.asarray(x, float) - x0) / (x1 - x0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _overturning_potential(grid: Grid, cfg: CirculationConfig) -> np.ndarray:
    """``A_x`` on zonal edges, shape (nlat-1, nlon, nz-1)."""
    nlat, nlon, nz = grid.shape
    m = grid.mask
    lat_f = 0.5 * (grid.lat[:-1] + grid.lat[1:])
    z_i = grid.zw[1:]  # interface depths between k and k+1
    basin = column_basins(grid)
    # edge basin: both rows of the face in the same basin
    eb = np.where(basin[:-1] == basin[1:], basin[:-1], 0)
    A = np.zeros((nlat - 1, nlon, nz - 1))
    L, Z = np.meshgrid(lat_f, z_i, indexing="ij")
    # NADW: psi = -S f(lat) g(z)
    f1 = _smoothstep(L, -60, -45) * (1 - _smoothstep(L, 45, 65))
    g1 = _smoothstep(Z, 0, 1000) * (1 - _smoothstep(Z, 1500, 4000))
    psi_nadw = -cfg.nadw_sv * SV * f1 * g1
    # AABW: psi = +S a(lat) d(z)
    a2 = _smoothstep(L, -72, -62) * (1 - _smoothstep(L, -55, 45))
    d2 = _smoothstep(Z, 0, 250) * (1 - 0.6 * _smoothstep(Z, 250, 5000))
    psi_aabw = cfg.aabw_sv * SV * a2 * d2
    for code in (1, 2, 3):
        sel = eb == code  # (nlat-1, nlon)
        nslices = np.maximum(sel.sum(axis=1), 1)  # per face row
        psi = psi_aabw + (psi_nadw if code == 1 else 0.0)
        A += np.where(sel[:, :, None], (psi / nslices[:, None])[:, None, :], 0.0)
    # zero on edges touching land (the 4 boxes around the edge must be wet)
    wet_edge = m[:-1, :, :-1] & m[1:, :, :-1] & m[:-1, :, 1:] & m[1:, :, 1:]
    A[~wet_edge] = 0.0
    return A


def _land_labels(land2d: np.ndarray) -> np.ndarray:
    """Connected components of a 2-D land mask (4-neighbour, periodic in longitude)."""
    from scipy.ndimage import label
    lab, n = label(land2d)
    # merge labels across the dateline
    for j in range(land2d.shape[0]):
        a, b = lab[j, 0], lab[j, -1]
        if a and b and a != b:
            lab[lab == b] = a
    return lab


def _gyre_potential(grid: Grid, cfg: CirculationConfig) -> np.ndarray:
    """``A_z`` on vertical edges at (lat face j-1/2, lon face i+1/2, layer k), shape (nlat+1, nlon, nz).

    Row 0 is the edge row beyond the south pole, row ``nlat`` the one beyond the north
    pole; both poles are treated as land masses (virtual land rows) so that the
    potential is one constant along every coast, including the polar caps.
    """
    nlat, nlon, nz = grid.shape
    m = grid.mask
    lat_f = np.concatenate([[-90.0], 0.5 * (grid.lat[:-1] + grid.lat[1:]), [90.0]])
    # latitude profile of the depth-integrated gyre streamfunction; signs give
    # clockwise subtropical gyres in the north, anticlockwise in the south
    G = (-np.sin(np.pi * np.clip((lat_f - 15) / 30, 0, 1)) * ((lat_f > 15) & (lat_f < 45))
         + 0.5 * np.sin(np.pi * np.clip((lat_f - 45) / 20, 0, 1)) * ((lat_f >= 45) & (lat_f < 65))
         + np.sin(np.pi * np.clip((lat_f + 45) / 30, 0, 1)) * ((lat_f > -45) & (lat_f < -15)))
    G = G * cfg.gyre_sv * SV
    acc_ramp = 1 - _smoothstep(lat_f, -62, -42)  # 1 near Antarctica, 0 north of 42 S
    zt = grid.zt
    w_gyre = np.exp(-zt / cfg.gyre_depth_m) * grid.dz
    w_gyre /= w_gyre.sum()
    w_acc = np.exp(-zt / 3000.0) * grid.dz
    w_acc /= w_acc.sum()
    A = np.zeros((nlat + 1, nlon, nz))
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    for k in range(nz):
        wetp = np.vstack([np.zeros((1, nlon), bool), m[:, :, k], np.zeros((1, nlon), bool)])
        landp = ~wetp
        lab = _land_labels(landp)
        touch = np.stack([lab[:-1], lab[1:], np.roll(lab[:-1], -1, axis=1), np.roll(lab[1:], -1, axis=1)])
        interior = (touch == 0).all(axis=0)
        # land masses sharing an edge must carry one potential value: merge them
        nl = int(lab.max()) + 1
        ii, jj = [], []
        for a in range(4):
            for b in range(a + 1, 4):
                sel = (touch[a] > 0) & (touch[b] > 0) & (touch[a] != touch[b])
                ii.append(touch[a][sel])
                jj.append(touch[b][sel])
        ii = np.concatenate(ii)
        jj = np.concatenate(jj)
        _, comp = connected_components(coo_matrix((np.ones(ii.size), (ii, jj)), shape=(nl, nl)), directed=False)
        south = comp[lab[0, 0]]
        north = comp[lab[-1, 0]]
        acc_val = -cfg.acc_sv * SV * w_acc[k] if south != north else 0.0
        comp_val = np.where(comp == south, acc_val, 0.0)
        comp_val[0] = 0.0
        Ak = np.where(interior, 0.0, comp_val[touch].min(axis=0) if acc_val <= 0 else comp_val[touch].max(axis=0))
        # interior: ACC ramp plus gyres with western intensification per wet segment
        for j in range(nlat + 1):
            row = interior[j]
            if not row.any():
                continue
            base = acc_val * acc_ramp[j]
            vals = np.full(nlon, base)
            if G[j] != 0 and not row.all():
                start = np.flatnonzero(row & ~np.roll(row, 1))
                for s0 in start:
                    seg = []
                    i = s0
                    while row[i % nlon] and len(seg) < nlon:
                        seg.append(i % nlon)
                        i += 1
                    L = len(seg)
                    s = (np.arange(L) + 1.0) / (L + 1.0)  # 0 at the west coast, 1 at the east coast
                    shape = (1 - s) * (1 - np.exp(-s / 0.08))
                    shape /= max(shape.max(), 1e-12)
                    vals[seg] = base + G[j] * w_gyre[k] * shape
            Ak[j, row] = vals[row]
        A[:, :, k] = Ak
    return A


def fluxes_from_potentials(grid: Grid, Ax: np.ndarray, Az: np.ndarray):
    """Face fluxes (U, V, W) in m^3 s^-1 from the two edge potentials (discrete curl), on every face
    (:func:`face_fluxes` evaluated on the whole face arrays).

    ``Ax``: (nlat-1, nlon, nz-1) on interior zonal edges; ``Az``: (nlat+1, nlon, nz), see
    :func:`_gyre_potential`.
    """
    nlat, nlon, nz = grid.shape
    q = face_fluxes(grid, Ax, Az)
    U = q["U"](*np.indices((nlat, nlon, nz)))
    V = q["V"](*np.indices((nlat - 1, nlon, nz)))
    W = q["W"](*np.indices((nlat, nlon, nz - 1)))
    # by construction every face touching land carries zero flux; clean round-off only
    m = grid.mask
    for Q, wet in ((U, m & np.roll(m, -1, axis=1)), (V, m[:-1] & m[1:]), (W, m[:, :, :-1] & m[:, :, 1:])):
        Q[~wet & (np.abs(Q) < 1e-9 * max(np.abs(Q).max(), 1.0))] = 0.0
    return U, V, W


def vertical_diffusivity(grid: Grid, cfg: CirculationConfig) -> np.ndarray:
    """``kappa_v`` on interfaces (nlat, nlon, nz-1), m^2 s^-1 (:func:`vertical_diffusivity_at` on every
    interface)."""
    nlat, nlon, nz = grid.shape
    return vertical_diffusivity_at(grid, cfg)(*np.indices((nlat, nlon, nz - 1)))


def face_fluxes(grid: Grid, Ax: np.ndarray, Az: np.ndarray) -> dict:
    """Face volume fluxes (m^3 s^-1) from the two edge potentials (discrete curl), as functions of face
    indices ``(fj, fi, fk)`` (arrays), evaluated only where asked: ``U`` on the east faces (nlat, nlon,
    nz), ``V`` on the north faces (nlat-1, nlon, nz), ``W`` upward through the interface below layer k
    (nlat, nlon, nz-1); see :mod:`~.transport` for the conventions."""
    nlat, nlon, nz = grid.shape

    def ax_above(j, i, k):           # A_x padded with zeros at the surface and the bottom (edge above layer k)
        inside = (k >= 1) & (k <= nz - 1)
        return np.where(inside, Ax[j, i, np.clip(k - 1, 0, nz - 2)], 0.0)

    def ax_south(j, i, k):           # A_x padded with zeros beyond the poles (edge south of row j)
        inside = (j >= 1) & (j <= nlat - 1)
        return np.where(inside, Ax[np.clip(j - 1, 0, nlat - 2), i, k], 0.0)

    return {"U": lambda j, i, k: Az[j + 1, i, k] - Az[j, i, k],
            "V": lambda j, i, k: (ax_above(j, i, k) - ax_above(j, i, k + 1))
            + (Az[j + 1, (i - 1) % nlon, k] - Az[j + 1, i, k]),
            "W": lambda j, i, k: ax_south(j, i, k) - ax_south(j + 1, i, k)}


def vertical_diffusivity_at(grid: Grid, cfg: CirculationConfig):
    """``kappa_v`` (m^2 s^-1) as a function of interface indices ``(fj, fi, fk)`` (the interface below
    layer fk): the mixed-layer value above ``mixed_layer_m``, at least ``kappa_v_convection`` above
    ``convection_depth_m`` in the convection regions (North Atlantic 50-68 N, south of 63 S)."""
    z_i = grid.zw[1:]
    basin = column_basins(grid)
    lat = grid.lat[:, None] * np.ones((1, grid.shape[1]))
    conv2d = ((basin == 1) & (lat > 50) & (lat < 68)) | (lat < -63)
    deep = z_i <= cfg.convection_depth_m

    def kv(j, i, k):
        out = np.where(z_i[k] <= cfg.mixed_layer_m, cfg.kappa_v_mixed_layer, float(cfg.kappa_v))
        conv = conv2d[j, i] & deep[k]
        out[conv] = np.maximum(out[conv], cfg.kappa_v_convection)
        return out
    return kv


def synthetic_rows(grid: Grid, cfg: CirculationConfig | None = None, rows=None):
    """``T`` (s^-1, natural order) of the synthetic circulation, all rows or only ``rows``: the two edge
    potentials on the whole grid, fluxes and diffusivities at the faces of ``rows`` only (so the
    temporaries beyond the potentials are the rows' share).  Equal to :func:`synthetic_circulation`'s
    bit for bit."""
    cfg = cfg or CirculationConfig()
    q = face_fluxes(grid, _overturning_potential(grid, cfg), _gyre_potential(grid, cfg))
    return advection_diffusion(grid, q["U"], q["V"], q["W"], cfg.kappa_h, vertical_diffusivity_at(grid, cfg),
                               rows=rows)


def synthetic_fluxes(grid: Grid, cfg: CirculationConfig | None = None) -> dict:
    """Face volume fluxes ``dict(U=..., V=..., W=...)`` (m^3 s^-1) of the synthetic circulation."""
    cfg = cfg or CirculationConfig()
    U, V, W = fluxes_from_potentials(grid, _overturning_potential(grid, cfg), _gyre_potential(grid, cfg))
    return {"U": U, "V": V, "W": W}


def synthetic_transport(grid: Grid, fluxes: dict, cfg: CirculationConfig | None = None, rows=None):
    """``T`` (s^-1, natural order) of the synthetic circulation from its fluxes: all rows, or only ``rows``
    (natural indices; see :func:`~.transport.advection_diffusion`)."""
    cfg = cfg or CirculationConfig()
    return advection_diffusion(grid, fluxes["U"], fluxes["V"], fluxes["W"], cfg.kappa_h,
                               vertical_diffusivity(grid, cfg), rows=rows)


def synthetic_circulation(grid: Grid, cfg: CirculationConfig | None = None, rows=None):
    """Build the synthetic transport operator ``T`` (s^-1, natural order; only ``rows`` when given) and
    its face fluxes.

    Returns ``(T, fluxes)`` with ``fluxes = dict(U=..., V=..., W=...)`` in m^3 s^-1.
    """
    fluxes = synthetic_fluxes(grid, cfg)
    return synthetic_transport(grid, fluxes, cfg, rows), fluxes


def max_divergence(grid: Grid, fluxes) -> float:
    """Largest |net outflow| of a box relative to the largest face flux (dimensionless)."""
    div = divergence(grid, fluxes["U"], fluxes["V"], fluxes["W"])
    scale = max(np.abs(fluxes[k]).max() for k in "UVW") or 1.0
    return float(np.abs(div).max() / scale)
