import numpy as np
import pytest

from bcp_hpc.errors import InputError
from bcp_hpc.grid.embedded import embedded_grid
from bcp_hpc.grid.grid import ocim2_vertical_grid
from bcp_hpc.grid.layout import Layout, hilbert_index
from bcp_hpc.grid.ocim2 import read_grid


def test_ocim2_vertical_grid_matches_formula():
    zw, zt, dz = ocim2_vertical_grid(24)
    k = np.arange(24)
    dz1 = 5750 / np.sum(1 + k ** 2 / 32)
    assert np.allclose(dz, dz1 * (1 + k ** 2 / 32), rtol=1e-14)
    assert np.isclose(zw[2], dz[0] + dz[1])
    assert np.isclose(zw[-1] + dz[-1], 5750.0)


def test_read_ocim2_mask(ocim2_mask_path):
    g = read_grid(ocim2_mask_path)
    m = g.mask
    assert g.nwet == int(m.sum())
    # natural ordering is MATLAB's find(M3d(:)) (Fortran order): layer 1 first
    assert np.array_equal(g.iwet, np.flatnonzero(m.ravel(order="F")))
    assert np.all(g.box_k[:g.n_surface] == 0)
    assert np.all(np.diff(g.box_k) >= 0)
    # euphotic zone = first two layers, base = top of layer 3
    assert np.isclose(g.euphotic_base_m, g.zw[2])
    assert g.euphotic.sum() == m[:, :, :2].sum()
    # volumes are area * thickness and the area is R^2 cos(lat) dlon dlat
    R = 6.371e6
    a = R ** 2 * np.cos(np.deg2rad(g.box_lat)) * np.deg2rad(2.0) * np.deg2rad(180 / 91)
    assert np.allclose(g.box_volume, a * g.box_dz, rtol=1e-12)
    # basin masks partition the wet boxes exactly
    total = sum(v.astype(int) for v in g.basins.values())
    assert np.array_equal(total[m], np.ones(g.nwet))
    # to3d/from3d round trip
    v = np.arange(g.nwet, dtype=float)
    assert np.array_equal(g.from3d(g.to3d(v)), v)


def test_embedded_world_is_reproducible_and_earth_like(embedded):
    g2 = embedded_grid()
    assert np.array_equal(embedded.mask, g2.mask)
    assert embedded.shape == (45, 90, 24)
    assert set(["ATL", "PAC", "IND"]) <= set(embedded.basins)
    for b in ("ATL", "PAC", "IND"):
        assert embedded.basins[b].sum() > 0.1 * embedded.nwet / 3
    # a circumpolar channel: some latitude row in the Southern Ocean is wet all around
    surf = embedded.mask[:, :, 0]
    so = embedded.lat < -40
    assert np.any(surf[so].all(axis=1))
    # every ocean column has at least two wet layers; no overhangs
    assert embedded.kmt[surf].min() >= 2
    assert not np.any(embedded.mask[:, :, 1:] & ~embedded.mask[:, :, :-1])


def test_hilbert_index_is_a_bijection():
    n = 4
    x, y = np.meshgrid(np.arange(16), np.arange(16))
    d = hilbert_index(n, x.ravel(), y.ravel())
    assert np.array_equal(np.sort(d), np.arange(256))
    # consecutive points on the curve are grid neighbours
    order = np.argsort(d)
    dx = np.abs(np.diff(x.ravel()[order])) + np.abs(np.diff(y.ravel()[order]))
    assert np.all(dx == 1)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_layout_columns_on_one_rank_and_balanced(embedded, size):
    owners = []
    for r in range(size):
        lay = Layout(embedded, size, r)
        loc = lay.local_natural()
        owners.append(loc)
        cols = embedded.box_column[loc]
        # every column on this rank is complete (all its wet boxes)
        for c in np.unique(cols)[:50]:
            assert np.count_nonzero(cols == c) == embedded.kmt.ravel()[c]
        # boxes of a column are contiguous and top to bottom
        k = embedded.box_k[loc]
        starts = np.flatnonzero(k == 0)
        assert np.all(np.diff(np.r_[starts, k.size]) == embedded.kmt.ravel()[cols[starts]])
    allb = np.concatenate(owners)
    assert np.array_equal(np.sort(allb), np.arange(embedded.nwet))
    sizes = np.array([o.size for o in owners])
    assert sizes.max() - sizes.min() <= 2 * embedded.shape[2]


def test_layout_global_index_is_a_permutation(embedded):
    lay = Layout(embedded, 3, 0)
    g = lay.global_index(4)
    assert np.array_equal(np.sort(g.ravel()), np.arange(4 * embedded.nwet))


def test_grid_validation_errors():
    zw, zt, dz = ocim2_vertical_grid(4)
    lat = np.array([-10.0, 10.0])
    lon = np.array([1.0, 3.0, 5.0])
    mask = np.ones((2, 3, 4), bool)
    from bcp_hpc.grid.grid import Grid
    with pytest.raises(InputError, match="lat"):
        Grid(mask=mask, lat=np.array([0.0]), lon=lon, zw=zw, zt=zt, dz=dz)
    with pytest.raises(InputError, match="NaN"):
        Grid(mask=mask, lat=np.array([np.nan, 1.0]), lon=lon, zw=zw, zt=zt, dz=dz)
    bad = mask.copy()
    bad[0, 0, 1] = False
    with pytest.raises(InputError, match="overhang"):
        Grid(mask=bad, lat=lat, lon=lon, zw=zw, zt=zt, dz=dz)


def test_generated_worlds_share_one_table_and_grow_with_the_spacing():
    """Every generated grid name is a world source and a data-layer grid; the sizes increase from the
    tiny world through the embedded and the 2.5 degree world to OCIM2's spacing; an unknown source is
    refused naming the known ones."""
    from bcp_hpc.data.grids import grid_from_spec
    from bcp_hpc.grid.embedded import GENERATED_GRIDS, generated_grid
    from bcp_hpc.operators.world import WORLD_SOURCES, load_world
    assert set(GENERATED_GRIDS) <= set(WORLD_SOURCES)
    sizes = {name: generated_grid(name).nwet for name in GENERATED_GRIDS}
    assert sizes["tiny"] < sizes["embedded"] < sizes["generated-2.5deg"] < sizes["generated-2deg"]
    g = grid_from_spec("generated-2.5deg")
    assert g.shape == (73, 144, 24) and g.nwet == sizes["generated-2.5deg"]
    assert load_world("generated-2.5deg").grid.nwet == g.nwet
    with pytest.raises(InputError, match="generated-2.5deg"):
        load_world("generated-3deg")


def test_per_box_arrays_are_compact_and_geometry_is_derived_from_the_axes(embedded):
    """Every rank holds the grid whole, so it keeps only indices (32-bit) and volumes per box; the
    rest of the geometry is computed from the 1-D axes and must equal the 3-D lookups."""
    g = embedded
    n = g.nwet
    ilat, ilon, k = np.nonzero(g.mask.transpose(2, 1, 0))[::-1]     # Fortran order: lat fastest
    assert np.array_equal(g.box_ilat, ilat) and np.array_equal(g.box_ilon, ilon) and np.array_equal(g.box_k, k)
    for a in (g.iwet, g.box_ilat, g.box_ilon, g.box_k, g.wet_index3d):
        assert a.dtype == np.int32
    assert np.array_equal(g.wet_index3d[ilat, ilon, k], np.arange(n))
    assert np.array_equal(g.box_area, g.area2d[ilat, ilon])
    assert np.array_equal(g.box_dz, g.dz[k])
    assert np.array_equal(g.box_zt, g.zt[k]) and np.array_equal(g.box_zw, g.zw[k])
    assert np.array_equal(g.box_lat, g.lat[ilat]) and np.array_equal(g.box_lon, g.lon[ilon])
    assert np.array_equal(g.box_column, ilat * g.shape[1] + ilon)
    assert np.array_equal(g.box_volume, g.area2d[ilat, ilon] * g.dz[k])
    per_box = [v for v in vars(g).values() if isinstance(v, np.ndarray) and v.size == n]
    assert sum(a.nbytes for a in per_box) == n * (4 * 4 + 8)      # iwet, ilat, ilon, k; volume
    lay = Layout(g, 2, 1)
    assert np.array_equal(lay.iperm[lay.perm], np.arange(n))
