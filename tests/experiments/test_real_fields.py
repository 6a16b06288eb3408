"""The real-observation joint inversion end to end with the real fields of ../shared (WOA phosphate,
temperature, salinity and silicate; GLODAPv2 bottle DIP, DIC with the anthropogenic field removed, ALK
and O2; the Mouw et al. trap compilation; the regridded OCMIP-2 piston velocity, pressure and P-E) on a
small OCIM2-layout operator: the OCIM2 mask coarsened to 12 degrees with the synthetic circulation,
exported in the OCIM2 layout.  The fields are written as NetCDF on OCIM2's grid and `bcp-hpc data build`
bins them; `experiment joint-products` fits each of three NPP products and writes fit statistics per
tracer, the export diagnostics and the trap comparison for each."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import OCIM2_DIR

pytest.importorskip("netCDF4", reason="netCDF4 (Debian python3-netcdf4) writes the NetCDF files")
pytest.importorskip("pyhdf", reason="pyhdf (Debian python3-hdf4) writes the Ocean Productivity files")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
from datafiles import write_op_hdf4, write_woa_like  # noqa: E402

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           OPENBLAS_NUM_THREADS="1")
CLI = [sys.executable, "-m", "bcp_hpc.cli.main"]
TRAPS = os.path.join(os.path.dirname(OCIM2_DIR), "mouw2016_flux_compilation", "Mouw2016_flux_compilation.csv")


def coarse_grid(fine, block=6):
    """The OCIM2 mask on a regular 12-degree grid: a coarse box is wet where most of its fine boxes are, and
    every wet box has a wet box above it."""
    from bcp_hpc.grid.grid import Grid
    nlat, nlon, nz = fine.shape
    rows = (nlat - 1) // block * block                     # OCIM2's 91 rows: the last (90 N, land) is left out
    m = fine.mask[:rows].reshape(rows // block, block, nlon // block, block, nz).mean(axis=(1, 3)) > 0.5
    # one ocean: columns cut off by the coarsening (a 12-degree Mediterranean) would hold what P - E puts in
    # them for a million years
    from scipy import ndimage
    surf = np.concatenate([m[:, :, 0], m[:, :, 0]], axis=1)        # periodic in longitude
    labels, _ = ndimage.label(surf)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    main = labels == np.argmax(sizes)
    keep = main[:, :m.shape[1]] | main[:, m.shape[1]:]
    m &= keep[:, :, None]
    for k in range(1, nz):
        m[:, :, k] &= m[:, :, k - 1]
    lat = -90.0 + 180.0 / (rows // block) * (np.arange(rows // block) + 0.5)
    lon = 360.0 / (nlon // block) * (np.arange(nlon // block) + 0.5)
    return Grid(mask=m, lat=lat, lon=lon, zw=fine.zw, zt=fine.zt, dz=fine.dz, name="ocim2-12deg")


def _mat(name, var):
    from bcp_hpc.io import matfile
    p = os.path.join(OCIM2_DIR, name)
    return np.asarray(matfile.get(matfile.load(p, [var]), var, p), dtype=float)


@pytest.mark.slow
def test_real_observation_joint_inversion_for_each_npp_product(tmp_path):
    if not os.path.exists(os.path.join(OCIM2_DIR, "GLODAPv2_91x180x24raw.mat")) or not os.path.exists(TRAPS):
        pytest.skip(f"the real OCIM2 fields are not at {OCIM2_DIR} (../shared absent)")
    from bcp_hpc.grid.embedded import synthetic_npp
    from bcp_hpc.grid.ocim2 import read_grid
    from bcp_hpc.operators.circulation import synthetic_circulation
    from bcp_hpc.operators.io import write_ocim2
    fine = read_grid(os.path.join(OCIM2_DIR, "M3d91x180x24.mat"))
    g = coarse_grid(fine)
    T, _ = synthetic_circulation(g)
    write_ocim2(str(tmp_path / "op.mat"), g, T)
    # the real fields as NetCDF on OCIM2's own grid (cell bounds: OCIM2's 2-degree cells and its layers)
    lat_b = np.stack([fine.lat - 1.0, fine.lat + 1.0], axis=1).clip(-90, 90)
    depth_b = np.stack([fine.zw, fine.zw + fine.dz], axis=1)
    recipe = ['[grid]', 'source = "op.mat"']

    def nc(field, arr3, variable, units):
        import netCDF4
        arr3 = np.where(fine.mask, arr3, np.nan)
        path = tmp_path / f"{field}.nc"
        write_woa_like(str(path), np.transpose(arr3, (2, 0, 1)), fine.lat, fine.lon, fine.zt, depth_bnds=depth_b,
                       variable=variable, units=units)
        with netCDF4.Dataset(path, "a") as d:       # OCIM2's cells end at the poles: give the latitude bounds
            d["lat"].bounds = "lat_bnds"
            b = d.createVariable("lat_bnds", "f4", ("lat", "nbounds"))
            b[:] = lat_b
        recipe.extend([f"[fields.{field}]", f'file = "{field}.nc"', f'variable = "{variable}"'])

    nc("temperature", _mat("tempobs_91x180x24.mat", "tempobs"), "t_an", "degrees_celsius")
    nc("salinity", _mat("Sobs_91x180x24.mat", "Sobs"), "s_an", "1")
    nc("po4", _mat("po4obs_91x180x24.mat", "po4obs"), "p_an", "micromoles_per_kilogram")
    nc("si", _mat("Siobs_91x180x24.mat", "Siobs"), "i_an", "micromoles_per_kilogram")
    nc("po4_obs", _mat("GLODAPv2_91x180x24raw.mat", "po4raw"), "PO4", "micro-mol kg-1")
    nc("o2_obs", _mat("GLODAPv2_91x180x24raw.mat", "o2raw"), "oxygen", "micro-mol kg-1")
    nc("dic_obs", _mat("GLODAPv2_91x180x24raw.mat", "dicraw"), "TCO2", "micro-mol kg-1")
    alk = _mat("GLODAPv2_91x180x24raw.mat", "alkraw")
    nc("alk_obs", np.where(np.isclose(alk, -9.999), np.nan, alk), "TAlk", "micro-mol kg-1")
    nc("dic_ant", _mat("DICant_91x180x24.mat", "DICant"), "Cant", "micro-mol kg-1")
    # surface forcing: the regridded OCMIP-2 piston velocity and pressure, the OCIM2 P-E (s-1 -> m s-1)
    import netCDF4

    def surface(name, map2d, units):
        with netCDF4.Dataset(tmp_path / f"{name}.nc", "w") as d:
            d.createDimension("lat", fine.shape[0])
            d.createDimension("lon", fine.shape[1])
            d.createDimension("nbounds", 2)
            for k, v, u in (("lat", fine.lat, "degrees_north"), ("lon", fine.lon, "degrees_east")):
                x = d.createVariable(k, "f8", (k,))
                x.units = u
                x[:] = v
            d["lat"].bounds = "lat_bnds"
            d.createVariable("lat_bnds", "f8", ("lat", "nbounds"))[:] = lat_b
            x = d.createVariable(name, "f8", ("lat", "lon"), fill_value=-1e30)
            x.units = units
            x[:] = np.where(np.isfinite(map2d), map2d, -1e30)
        recipe.extend([f"[forcing.{name}]", f'file = "{name}.nc"', f'variable = "{name}"'])

    kw = _mat("kw660_91x180.mat", "Kw660")
    surface("piston_velocity", np.where(kw < 0, 0.0, kw), "m s-1")
    surface("sea_level_pressure", _mat("kw660_91x180.mat", "p4"), "atm")
    pme = _mat("PME_TS_91x180x24.mat", "pme").ravel()
    top = fine.box_k == 0
    surface("pme", fine.surface_to2d(pme[top]) * fine.dz[0], "m s-1")
    # NPP: no satellite product on this machine; three synthetic products in the Ocean Productivity format
    os.makedirs(tmp_path / "npp")
    for prod in ("vgpm", "cbpm", "cafe"):
        m = synthetic_npp(g, prod)
        op = np.roll(m, m.shape[1] // 2, axis=1)[::-1]
        for mo in range(12):
            doy = (np.datetime64(f"2010-{mo + 1:02d}-01") - np.datetime64("2010-01-01")).astype(int) + 1
            write_op_hdf4(str(tmp_path / "npp" / f"{prod}.2010{doy:03d}.hdf"), op)
        recipe.extend([f"[npp.{prod}]", f'files = "npp/{prod}.*.hdf"'])
    recipe.extend(["[traps]", f'file = "{TRAPS}"', 'columns = { flux = "POC_flux_mg_m2_d" }'])
    (tmp_path / "recipe.toml").write_text("\n".join(recipe) + "\n")
    r = subprocess.run(CLI + ["data", "build", str(tmp_path / "recipe.toml"), "--out", str(tmp_path / "in.h5")],
                       capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = tmp_path / "run.toml"
    cfg.write_text('[model]\ncycle = "PCO"\n[world]\nsource = "ocim2"\npath = "op.mat"\ninputs = "in.h5"\n'
                   '[joint]\nobservations = "inputs"\nnpp_products = ["vgpm", "cbpm", "cafe"]\n'
                   '[inversion]\nmax_it = 6\n')
    r = subprocess.run(CLI + ["experiment", "joint-products", "--config", str(cfg), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=ENV, timeout=2400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "synthetic stand-ins" not in r.stdout
    res = json.loads((tmp_path / "o" / "joint_products.json").read_text())
    assert res["products"] == ["vgpm", "cbpm", "cafe"]
    for prod in res["products"]:
        run = res["runs"][prod]
        # fit statistics per observed tracer, whatever their value (the synthetic circulation is no ocean)
        assert set(run["fit"]) == {"DIP", "DIC", "ALK", "O2"}
        for st in run["fit"].values():
            assert st["n_obs"] > 100 and np.isfinite(st["r2"]) and st["rmse_mmol_m3"] > 0
        for k in ("poc_export_pg_c_per_yr", "docs_export_pg_c_per_yr", "toc_export_pg_c_per_yr"):
            assert np.isfinite(run[k])
        assert run["traps"] is not None and run["traps"]["stations"]
        assert set(run["henson_f100_pg_c_per_yr"]) == {"vgpm", "cbpm", "cafe"}
        assert isinstance(run["converged"], bool) and run["tao_reason"]
    assert set(res["mean_std"]["toc_export_pg_c_per_yr"]) == {"mean", "std"}
    # the report of the real-data experiment: Figures 2-4 from its files, every product on the Taylor diagram
    r = subprocess.run(CLI + ["report", str(tmp_path / "o")], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    figs = tmp_path / "o" / "figures"
    for name in ("export_maps", "doc_maps", "taylor", "obs_vs_model", "sections_O2", "convergence"):
        assert (figs / f"{name}.png").stat().st_size > 0, name
    labels = {p["label"] for p in json.loads((figs / "taylor.json").read_text())["points"]}
    assert {f"inverse, {p}" for p in res["products"]} | {f"Henson, {p}" for p in res["products"]} <= labels
