import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from bcp_hpc.grid.ocim2 import read_grid
from bcp_hpc.grid.basins import column_basins
from bcp_hpc.operators.circulation import CirculationConfig, max_divergence, synthetic_circulation
from bcp_hpc.operators.sinking import martin_operator, martin_operator_db, pic_operator
from bcp_hpc.operators.transport import conservation_defects, divergence

KAPPA_P = 1.0 / (30 * 86400.0)


def test_synthetic_circulation_conserves_mass_embedded(embedded):
    T, fl = synthetic_circulation(embedded)
    assert max_divergence(embedded, fl) < 1e-13
    d = conservation_defects(T, embedded.box_volume)
    assert d["row_sum_rel"] < 1e-13 and d["volume_column_sum_rel"] < 1e-13
    # diagonal positive, off-diagonals non-positive (monotone upwind + diffusion)
    assert np.all(T.diagonal() > 0)
    off = T - sp.diags(T.diagonal())
    assert off.data.max() <= 1e-30


def test_circulation_is_periodic_and_has_overturning(embedded):
    _, fl = synthetic_circulation(embedded)
    # flow crosses the dateline (last longitude -> first)
    assert np.abs(fl["U"][:, -1, :]).max() > 1e3
    # zonal ACC is eastward in the circumpolar channel
    # eastward transport through a meridional section across the Southern Ocean (Drake-like), in Sv
    so = embedded.lat < -35
    for i in (0, 30, 60):
        assert fl["U"][so, i, :].sum() > 50e6


def test_diffusivities_are_configurable(small_grid):
    T1, _ = synthetic_circulation(small_grid, CirculationConfig(kappa_h=1e3))
    T2, _ = synthetic_circulation(small_grid, CirculationConfig(kappa_h=2e3))
    assert abs(T1 - T2).max() > 0


def test_ocim2_mask_circulation_looks_like_an_ocean(ocim2_mask_path):
    g = read_grid(ocim2_mask_path)
    T, fl = synthetic_circulation(g)
    assert max_divergence(g, fl) < 1e-13
    d = conservation_defects(T, g.box_volume)
    assert d["row_sum_rel"] < 1e-13 and d["volume_column_sum_rel"] < 1e-13
    W = fl["W"]  # upward flux through the interface below layer k
    lat = g.lat[:, None] * np.ones((1, g.shape[1]))
    basin = column_basins(g)
    k1000 = np.searchsorted(g.zw, 1000.0) - 1
    na = (basin == 1) & (lat > 45) & (lat < 66)
    ant = lat < -62
    so = (lat > -60) & (lat < -45)
    assert W[:, :, k1000][na].sum() < -10e6       # deep-water formation in the northern North Atlantic
    assert W[:, :, k1000][ant].sum() < -10e6      # and around Antarctica
    assert W[:, :, 10][so].sum() > 5e6            # the Southern Ocean upwells


def test_ideal_age_on_ocim2_mask(ocim2_mask_path):
    from bcp_hpc.diagnostics.age import age_summary, ideal_age
    from bcp_hpc.grid.distributed import DistributedGrid
    from bcp_hpc.petsc_env import import_petsc4py
    PETSc = import_petsc4py()
    g = read_grid(ocim2_mask_path)
    T, _ = synthetic_circulation(g)
    dg = DistributedGrid(g, PETSc.COMM_SELF)
    Tp = dg.matrix_from_scipy(T)
    age = ideal_age(dg, Tp)
    Tp.destroy()
    s = age_summary(g, age)
    assert 500 <= s["mean_below_1000m"] <= 1500
    assert s["north_pacific_1500_3500m"] > s["north_atlantic_1500_3500m"]
    assert np.median(age[g.box_k == 0]) < 0.5 and np.all(age[g.box_k == 0] < 10.0)


def _column_reference(zw_top, dz, kappa, b):
    """Spec §1.5 per-column formula written independently: K x K lower bidiagonal."""
    K = len(dz)
    F = np.zeros((K, K))
    m = np.zeros(K + 1)
    m[1:K] = 1.0  # interfaces 2..K are between wet boxes; surface and floor closed
    zwf = np.r_[zw_top, zw_top[-1] + dz[-1]]
    for k in range(K):
        F[k, k] = kappa * zwf[k + 1] * m[k + 1] / (b * dz[k])
        if k > 0:
            F[k, k - 1] = -kappa * zwf[k] * m[k] / (b * dz[k])
    return F


def test_martin_operator_matches_spec_formula_and_conserves(small_grid):
    g = small_grid
    b = 0.9
    F = martin_operator(g, KAPPA_P, b)
    # exact conservation: 1^T V F = 0
    colsum = g.box_volume @ F
    assert np.abs(colsum).max() <= 1e-15 * np.abs(F).max() * g.box_volume.max()
    # per-column comparison with the reference formula
    cols = np.unique(g.box_column)
    for c in cols[:: max(1, len(cols) // 25)]:
        idx = np.flatnonzero(g.box_column == c)
        idx = idx[np.argsort(g.box_k[idx])]
        ref = _column_reference(g.box_zw[idx], g.box_dz[idx], KAPPA_P, b)
        assert np.allclose(F[idx][:, idx].toarray(), ref, rtol=1e-13, atol=0)
    # column-local: no entry couples two columns
    coo = F.tocoo()
    assert np.all(g.box_column[coo.row] == g.box_column[coo.col])


def test_martin_export_identity_and_no_loss(small_grid):
    g = small_grid
    F = martin_operator(g, KAPPA_P, 1.0)
    src = np.where(g.euphotic, 1e-8, 0.0)
    C = spl.spsolve((F + KAPPA_P * sp.eye(g.nwet)).tocsc(), src)
    # nothing lost: total remineralisation equals total production
    assert np.isclose((KAPPA_P * C * g.box_volume).sum(), (src * g.box_volume).sum(), rtol=1e-12)
    # export identity: flux through the euphotic base = remineralisation below it (per column)
    speed = KAPPA_P / 1.0 * (g.box_zw + g.box_dz)
    for c in np.unique(g.box_column)[:40]:
        idx = np.flatnonzero(g.box_column == c)
        k2 = idx[g.box_k[idx] == 1]
        deeper = idx[g.box_k[idx] >= 2]
        flux = speed[k2] * C[k2] if deeper.size else np.zeros(1)
        below = (KAPPA_P * C[deeper] * g.box_dz[deeper]).sum()
        assert np.isclose(flux.sum(), below, rtol=1e-12, atol=1e-30)


def test_martin_b_derivatives_against_finite_differences(small_grid):
    g = small_grid
    b, h = 1.1, 1e-5
    Fp = martin_operator(g, KAPPA_P, b + h)
    Fm = martin_operator(g, KAPPA_P, b - h)
    F0 = martin_operator(g, KAPPA_P, b)
    d1 = martin_operator_db(g, KAPPA_P, b, 1)
    d2 = martin_operator_db(g, KAPPA_P, b, 2)
    fd1 = (Fp - Fm) / (2 * h)
    fd2 = (Fp - 2 * F0 + Fm) / h ** 2
    assert abs(d1 - fd1).max() <= 1e-8 * abs(d1).max()
    assert abs(d2 - fd2).max() <= 1e-4 * abs(d2).max()


def test_pic_operator_conserves(small_grid):
    g = small_grid
    F = pic_operator(g, KAPPA_P, 4500.0)
    assert np.abs(g.box_volume @ F).max() <= 1e-15 * abs(F).max() * g.box_volume.max()


def test_divergence_rejects_flux_through_land(small_grid):
    g = small_grid
    U = np.zeros(g.shape)
    V = np.zeros((g.shape[0] - 1,) + g.shape[1:])
    W = np.zeros(g.shape[:2] + (g.shape[2] - 1,))
    land = np.argwhere(~g.mask)[0]
    U[tuple(land)] = 1.0
    with pytest.raises(ValueError, match="land"):
        divergence(g, U, V, W)


def _same(A, B):
    """Same CSR arrays: pattern, entry order and values, bit for bit."""
    return (np.array_equal(A.indptr, B.indptr) and np.array_equal(A.indices, B.indices)
            and np.array_equal(A.data, B.data))


@pytest.mark.parametrize("nranks", [1, 3])
def test_rows_of_the_operators_equal_the_whole_operators_rows(embedded, nranks):
    """Each rank's rows made from its own boxes and faces only (the synthetic circulation's fluxes and
    diffusivities at its faces, the particle operators from its columns) equal the same rows of the
    operators made whole, bit for bit: another rank layout gives the same matrices."""
    from bcp_hpc.grid.layout import Layout
    from bcp_hpc.operators.circulation import synthetic_rows
    from bcp_hpc.operators.rows import restrict_rows
    cfg = CirculationConfig(kappa_v_convection=0.5)
    T_whole, _ = synthetic_circulation(embedded, cfg)
    assert _same(synthetic_rows(embedded, cfg), T_whole)
    b = np.random.default_rng(1).uniform(0.6, 1.4, embedded.nwet)
    for r in range(nranks):
        rows = Layout(embedded, nranks, r).local_natural()
        assert _same(synthetic_rows(embedded, cfg, rows=rows), restrict_rows(T_whole, rows))
        for make in (lambda **k: martin_operator(embedded, KAPPA_P, b, **k),
                     lambda **k: pic_operator(embedded, 1e-4, 2000.0, **k)):
            assert _same(make(rows=rows), restrict_rows(make(), rows))
