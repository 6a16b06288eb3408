"""Data layer: readers in the real formats, conservative binning, gap filling, build/check, bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bcp_hpc.data import regrid
from bcp_hpc.data.climatology import bin_field
from bcp_hpc.data.fill import fill_wet
from bcp_hpc.data.netcdf import read_variable
from bcp_hpc.data.npp import gap_fill_year, npp_climatology, read_month
from bcp_hpc.data.units import seawater_density, to_model_units
from bcp_hpc.errors import InputError
from bcp_hpc.grid.grid import Grid, regular_latlon_grid

from conftest import OCIM2_DIR, SHARED_DATA
from datafiles import centres, write_epc100, write_glodap_like, write_op_hdf4, write_woa_like

netCDF4 = pytest.importorskip("netCDF4", reason="netCDF4 (Debian python3-netcdf4) writes the NetCDF-4 test files")
pyhdf = pytest.importorskip("pyhdf.SD", reason="pyhdf (Debian python3-hdf4) is needed for the HDF4 NPP reader")


def full_grid(nlat, nlon, zedges):
    lat, lon = regular_latlon_grid(nlat, nlon)
    zw = np.asarray(zedges[:-1], float)
    dz = np.diff(zedges)
    return Grid(mask=np.ones((nlat, nlon, len(dz)), bool), lat=lat, lon=lon, zw=zw, zt=zw + dz / 2, dz=dz,
                name="test-full")


# ------------------------------------------------------------------ NetCDF readers
def test_netcdf4_flipped_lat_signed_lon_fill_and_packing(tmp_path):
    rng = np.random.default_rng(0)
    lat = centres(18, 90, -90)                     # north to south
    lon = centres(36, -180, 180)                   # -180..180
    depth = np.array([5.0, 50.0, 150.0])
    v = rng.random((3, 18, 36)) + 0.5
    v[1, 3, 4] = np.nan
    for packed in (False, True):
        p = str(tmp_path / f"woa{packed}.nc")
        write_woa_like(p, v, lat, lon, depth, depth_bnds=[[0, 10], [10, 100], [100, 200]], packed=packed)
        f = read_variable(p, "p_an")
        assert f.dims == ("depth", "lat", "lon")
        assert f.units == "micromoles_per_kilogram"
        tol = 6e-4 if packed else 1e-6
        np.testing.assert_allclose(f.values[np.isfinite(v)], v[np.isfinite(v)], atol=tol)
        assert np.isnan(f.values[1, 3, 4]) and np.isfinite(f.values).sum() == v.size - 1
        np.testing.assert_allclose(f.depth_edges, [0, 10, 100, 200])
        np.testing.assert_allclose(f.lat_edges[[0, -1]], [90, -90])
        # binned onto the model's south-to-north, 0-360 E grid with the same cells: a pure re-ordering
        g = full_grid(18, 36, [0, 10, 100, 200])
        b = regrid.conservative_bin(f.values, f.lat_edges, f.lon_edges, regrid.model_lat_edges(g.lat),
                                    regrid.model_lon_edges(g.lon), f.depth_edges, [0, 10, 100, 200])
        expect = np.transpose(v, (1, 2, 0))[::-1]      # (lat south->north, lon, depth)
        expect = np.roll(expect, -18, axis=1)           # -180..180 -> 0..360
        ok = np.isfinite(expect)
        np.testing.assert_allclose(b.value[ok], expect[ok], atol=tol, rtol=0)
        assert np.isnan(b.value[~ok]).all()
        np.testing.assert_allclose(b.n_obs[ok], 1.0, atol=1e-12)


def test_netcdf3_glodap_layout_and_gzip(tmp_path):
    lat = centres(9, -90, 90)
    lon = centres(18, 20, 380)                      # GLODAPv2 mapped: 20.5 .. 379.5 E
    depth = np.array([0.0, 100.0, 500.0])
    v = np.arange(3 * 9 * 18, dtype=float).reshape(3, 9, 18) + 2000
    p = str(tmp_path / "GLODAPv2.2016b.TCO2.nc")
    write_glodap_like(p, v, lat, lon, depth)
    import gzip
    import shutil
    with open(p, "rb") as s, gzip.open(p + ".gz", "wb") as d:
        shutil.copyfileobj(s, d)
    for path in (p, p + ".gz"):
        f = read_variable(path, "TCO2")
        assert f.dims == ("depth", "lat", "lon") and f.units == "micro-mol kg-1"
        np.testing.assert_array_equal(f.values, v)
        np.testing.assert_allclose(f.depth_edges, [0, 50, 300, 700])


def test_netcdf_bad_input(tmp_path):
    lat, lon, depth = centres(4, -90, 90), centres(8, 0, 360), np.array([5.0, 15.0])
    p = str(tmp_path / "a.nc")
    write_woa_like(p, np.ones((2, 4, 8)), lat, lon, depth)
    with pytest.raises(InputError, match=r"a\.nc.*'nope'.*variable not found.*p_an"):
        read_variable(p, "nope")
    with open(p, "rb") as fh:
        head = fh.read(3000)
    t = str(tmp_path / "truncated.nc")
    with open(t, "wb") as fh:
        fh.write(head)
    with pytest.raises(InputError, match="truncated"):
        read_variable(t, "p_an")
    junk = str(tmp_path / "junk.nc")
    with open(junk, "wb") as fh:
        fh.write(b"this is not netcdf at all")
    with pytest.raises(InputError, match="not a NetCDF file"):
        read_variable(junk, "p_an")
    gz = str(tmp_path / "bad.nc.gz")
    import gzip
    with open(p, "rb") as fh:
        data = gzip.compress(fh.read())
    with open(gz, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        read_variable(gz, "p_an")


def test_units_checked_and_converted(tmp_path):
    lat, lon, depth = centres(4, -90, 90), centres(8, 0, 360), np.array([5.0, 15.0])
    g = full_grid(4, 8, [0, 10, 20])
    p = str(tmp_path / "t.nc")
    write_woa_like(p, np.ones((2, 4, 8)) * 10, lat, lon, depth, variable="t_an", units="kelvin")
    with pytest.raises(InputError, match=r"t\.nc.*'t_an'.*units 'kelvin' not recognised"):
        bin_field(p, "t_an", g, name="temperature")
    write_woa_like(p, np.ones((2, 4, 8)) * 10, lat, lon, depth, variable="p_an", units="degrees_celsius")
    with pytest.raises(InputError, match=r"'p_an'.*not concentration units"):
        bin_field(p, "p_an", g, name="po4")
    write_woa_like(p, np.ones((2, 4, 8)) * 2.0, lat, lon, depth, variable="p_an", units=None)
    with pytest.raises(InputError, match="no 'units' attribute"):
        bin_field(p, "p_an", g, name="po4")
    f = bin_field(p, "p_an", g, name="po4", units="umol/kg")  # recipe override
    np.testing.assert_allclose(f.values, 2.0 * 1.025)          # constant density without T, S
    rho = seawater_density(np.full(g.shape, 10.0), np.full(g.shape, 35.0), 0.0)
    f = bin_field(p, "p_an", g, name="po4", units="umol/kg", density=rho)
    np.testing.assert_allclose(f.values, 2.0 * rho / 1000)
    np.testing.assert_allclose(to_model_units(1.0, "ml/l", "concentration"), 44.661)


def test_seawater_density_check_values():
    # UNESCO (1981) check values at one atmosphere
    assert abs(seawater_density(25.0, 35.0) - 1023.343) < 1e-3
    assert abs(seawater_density(0.0, 35.0) - 1028.106) < 1e-3
    assert abs(seawater_density(4.0, 0.0) - 999.975) < 1e-3


# ------------------------------------------------------------------ binning
def test_binning_conserves_volume_weighted_mean():
    rng = np.random.default_rng(1)
    slat, slon = centres(180, -90, 90), centres(360, -180, 180)
    sz = np.array([0, 10, 30, 60, 100, 200, 400, 700, 1000.0])
    v = rng.random((8, 180, 360))
    v[rng.random(v.shape) < 0.2] = np.nan
    slat_e = np.linspace(-90, 90, 181)
    slon_e = np.linspace(-180, 180, 361)
    dst_lat = np.linspace(-90, 90, 46)
    dst_lon = np.linspace(0, 360, 91)
    dst_z = np.array([0, 36.0, 150.0, 480.0, 1000.0])
    b = regrid.conservative_bin(v, slat_e, slon_e, dst_lat, dst_lon, sz, dst_z)
    # independent: the source mean with exact spherical-area x thickness weights
    w = (np.diff(sz)[:, None, None] * np.diff(np.sin(np.deg2rad(slat_e)))[None, :, None]
         * np.diff(slon_e)[None, None, :])
    ok = np.isfinite(v)
    src_mean = (v[ok] * w[ok]).sum() / w[ok].sum()
    okb = np.isfinite(b.value)
    model_mean = (b.value[okb] * b.measure[okb]).sum() / b.measure[okb].sum()
    assert abs(model_mean - src_mean) < 1e-13
    assert abs(b.measure.sum() - w[ok].sum()) < 1e-12 * w.sum()
    # every source data cell is counted once in total
    assert abs(b.n_obs.sum() - ok.sum()) < 1e-8 * ok.sum()
    del slat, slon


def test_fill_only_unobserved_wet_boxes():
    v = np.full((4, 5), np.nan)
    v[1, 1], v[1, 3] = 1.0, 3.0
    wet = np.ones((4, 5), bool)
    wet[3, :] = False
    out, filled = fill_wet(v, wet)
    assert out[1, 1] == 1.0 and out[1, 3] == 3.0              # data never changed
    assert out[1, 2] == 2.0                                    # mean of the two wet neighbours
    assert np.isnan(out[3]).all() and not filled[3].any()      # land stays land
    assert np.isfinite(out[wet]).all() and filled.sum() == wet.sum() - 2


# ------------------------------------------------------------------ NPP
def test_gap_rule_hand_built():
    m = np.full((12, 3), np.nan)
    m[:, 0] = [5, np.nan, 100, 50, 40, np.nan, 30, 20, 10, 60, 70, 80]     # min 5 < 10% max -> 5
    m[:, 1] = [20, 40, 100, np.nan, 30, 25, 35, 45, 55, 65, 75, 85]        # 10% max = 10 < min 20 -> 10
    out = gap_fill_year(m)
    assert out[1, 0] == 5 and out[5, 0] == 5
    assert out[3, 1] == 10
    assert np.isnan(out[:, 2]).all()                                         # never observed: stays missing
    np.testing.assert_array_equal(out[np.isfinite(m)], m[np.isfinite(m)])


def _npp_year(tmp_path, product, year, months, gz_every=2):
    files = []
    for mo in range(12):
        doy = (np.datetime64(f"{year}-{mo + 1:02d}-01") - np.datetime64(f"{year}-01-01")).astype(int) + 1
        name = f"{product}.{year}{doy:03d}.hdf" + (".gz" if mo % gz_every == 0 else "")
        files.append(write_op_hdf4(str(tmp_path / name), months[mo]))
    return files


def test_npp_climatology_from_hdf4(tmp_path):
    rng = np.random.default_rng(2)
    nlat, nlon = 18, 36
    files, expect_years = [], []
    for year in (2003, 2004):
        months = 200 + 300 * rng.random((12, nlat, nlon))
        months[rng.random(months.shape) < 0.15] = np.nan       # clouds / polar night
        months[:, 0, :] = np.nan                               # never observed (ice): filled on the model grid
        files += _npp_year(tmp_path, "cbpm", year, months)
        # independent annual mean with the gap rule written out per pixel
        ann = np.full((nlat, nlon), np.nan)
        for i in range(nlat):
            for j in range(nlon):
                x = months[:, i, j]
                if np.isfinite(x).any():
                    f = min(0.1 * np.nanmax(x), np.nanmin(x))
                    ann[i, j] = np.where(np.isfinite(x), x, f).mean()
        expect_years.append(ann)
    expect = np.mean(expect_years, axis=0)[::-1]               # north-first file -> south-first model
    expect = np.roll(expect, -nlon // 2, axis=1)               # -180..180 -> 0..360
    g = full_grid(nlat, nlon, [0, 50, 100])
    r = npp_climatology(files, g, product="cbpm")
    assert r["years"] == [2003, 2004] and len(r["files"]) == 24
    ok = np.isfinite(expect)
    np.testing.assert_allclose(r["npp"][ok], expect[ok], rtol=1e-5)
    assert r["filled"][~ok].all() and not r["filled"][ok].any()
    assert np.isfinite(r["npp"]).all()                          # the wet row without data got the fill
    npp, le, oe = read_month(files[1])
    assert npp.shape == (nlat, nlon) and le[0] == 90 and oe[0] == -180


def test_npp_bad_input(tmp_path):
    nlat, nlon = 6, 12
    months = np.full((12, nlat, nlon), 300.0)
    months[4] = np.nan                                         # an all-NaN month
    files = _npp_year(tmp_path, "vgpm", 2005, months)
    g = full_grid(nlat, nlon, [0, 50])
    with pytest.raises(InputError, match=r"vgpm\.2005121\.hdf.*'npp'.*all-NaN month"):
        npp_climatology(files, g)
    with pytest.raises(InputError, match=r"year 2005 lacks .*months \[5\]"):
        npp_climatology([f for f in files if "2005121" not in f], g)
    bad = str(tmp_path / "vgpm.2006001.hdf")
    with open(bad, "wb") as fh:
        fh.write(b"\x0e\x03\x13\x01" + b"\x00" * 100)
    with pytest.raises(InputError, match=r"vgpm\.2006001\.hdf"):
        read_month(bad)
    trunc = str(tmp_path / "vgpm.2006032.hdf.gz")
    with open(files[0], "rb") as fh:
        data = fh.read()
    with open(trunc, "wb") as fh:
        fh.write(data[: len(data) // 3])
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        read_month(trunc)
    wrong = write_op_hdf4(str(tmp_path / "vgpm.2007001.hdf"), np.ones((nlat, nlon)), units="degC")
    with pytest.raises(InputError, match=r"vgpm\.2007001\.hdf.*not areal_flux units"):
        read_month(wrong)
    with pytest.raises(InputError, match="data set not found"):
        read_month(files[1], variable="chl")


# ------------------------------------------------------------------ ESM epc100
def test_epc100_time_mean_and_units(tmp_path):
    lat, lon = centres(9, -90, 90), centres(18, -180, 180)
    days = 365.0 * (np.arange(24) / 12.0 + 150) + 15       # monthly, 2000-2001 (noleap)
    rng = np.random.default_rng(3)
    v = 1e-7 * (1 + rng.random((24, 9, 18)))
    p = str(tmp_path / "epc100_Omon_X_historical_r1i1p1f1_gr_200001-200112.nc")
    write_epc100(p, v, lat, lon, days)
    from bcp_hpc.data.esm import epc100_climatology
    g = full_grid(9, 18, [0, 100])
    r = epc100_climatology(p, g, years=[2001, 2001])
    assert r["years"] == (2001.0, 2001.0) and r["n_records"] == 12
    expect = np.roll(v[12:].mean(axis=0), -9, axis=1) * 12.011e3 * 86400
    np.testing.assert_allclose(r["epc100"], expect, rtol=1e-6)
    with pytest.raises(InputError, match="no records in the years 1990-1991"):
        epc100_climatology(p, g, years=[1990, 1991])


# ------------------------------------------------------------------ traps
def test_traps_averaged_and_matched(tmp_path, small_grid):
    g = small_grid
    wet_cols = np.argwhere(g.mask[:, :, 3])
    i, j = wet_cols[len(wet_cols) // 2]
    land = np.argwhere(~g.mask[:, :, 0])[0]
    lat0, lon0 = g.lat[i], g.lon[j] - 360.0            # -180..180 convention in the file
    depth = g.zt[3]
    p = str(tmp_path / "traps.csv")
    with open(p, "w") as fh:
        fh.write("ID_unique_loc_identifier,latitude,longitude,depth,POC_flux_mg_m2_d,comment\n")
        for f in (10.0, 20.0, 60.0):
            fh.write(f"A,{lat0},{lon0},{depth},{f},cup\n")
        fh.write(f"B,{g.lat[land[0]]},{g.lon[land[1]]},100,5.0,on land\n")
        fh.write(f"C,{lat0},{lon0},{depth},,no flux\n")
    from bcp_hpc.data.traps import binned_3d, match_traps
    t = match_traps(p, g)
    a = list(t.station).index("A")
    assert t.flux[a] == 30.0 and t.n_records[a] == 3
    assert (t.ilat[a], t.ilon[a], t.k[a]) == (i, j, 3) and t.in_model[a]
    assert t.box[a] == g.wet_index3d[i, j, 3]
    b = list(t.station).index("B")
    assert not t.in_model[b] and t.box[b] == -1
    assert len(t) == 2
    assert np.nansum(binned_3d(t, g)) == 30.0
    with open(p, "w") as fh:
        fh.write("latitude,longitude,depth,POC_flux_mg_m2_d\n1,2,3,4\n")
    with pytest.raises(InputError, match="no station column"):
        match_traps(p, g)


def test_mouw_compilation_matches_prebinned_file():
    csv = os.path.join(SHARED_DATA, "mouw2016_flux_compilation", "Mouw2016_flux_compilation.csv")
    mat = os.path.join(OCIM2_DIR, "Mouw_POC_91x180x24.mat")
    if not (os.path.exists(csv) and os.path.exists(mat)):
        pytest.skip("Mouw et al. 2016 compilation / OCIM2 fields not found (../shared absent)")
    from bcp_hpc.data.catalog import Ocim2Directory
    from bcp_hpc.data.traps import binned_3d, match_traps
    d = Ocim2Directory(OCIM2_DIR)
    g = d.grid()
    ours = np.isfinite(binned_3d(match_traps(csv, g), g))
    ref = np.isfinite(d.raw("poc_flux_traps")) & g.mask
    # the group's binned file and ours from the raw records pick (nearly) the same boxes
    assert (ours & ref).sum() >= 0.95 * ref.sum()


# ------------------------------------------------------------------ build / check / load
def _recipe(tmp_path, grid="tiny", extra=""):
    from bcp_hpc.data.grids import grid_from_spec
    g = grid_from_spec(grid)
    lat, lon = centres(30, 90, -90), centres(60, -180, 180)
    depth = np.array([0, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 4000, 5000, 5800.0])
    L = lat[None, :, None]
    Z = depth[:, None, None]
    po4 = (0.3 + 2.0 * (1 - np.exp(-Z / 700.0)) + 0 * L) * np.ones((1, 1, 60))
    po4[:, :3, :] = np.nan
    temp = (2 + 25 * np.exp(-(L / 30.0) ** 2) * np.exp(-Z / 800.0)) * np.ones((1, 1, 60))
    sal = np.full_like(temp, 34.8)
    write_woa_like(str(tmp_path / "p.nc"), po4, lat, lon, depth, variable="p_an")
    write_woa_like(str(tmp_path / "t.nc"), temp, lat, lon, depth, variable="t_an", units="degrees_celsius")
    write_woa_like(str(tmp_path / "s.nc"), sal, lat, lon, depth, variable="s_an", units="1")
    write_glodap_like(str(tmp_path / "dic.nc"), 2100 + 0 * po4[:, ::-1], lat[::-1], centres(60, 20, 380), depth)
    os.makedirs(tmp_path / "npp", exist_ok=True)
    _npp_year(tmp_path / "npp", "vgpm", 2010, 300 + 100 * np.random.default_rng(4).random((12, 30, 60)))
    with open(tmp_path / "traps.csv", "w") as fh:
        fh.write("station,lat,lon,depth,flux\nX,10.5,-150.5,1000,12.0\n")
    r = tmp_path / "recipe.toml"
    r.write_text(f"""
[grid]
source = "{grid}"
[fields.po4]
file = "p.nc"
variable = "p_an"
[fields.temperature]
file = "t.nc"
variable = "t_an"
[fields.salinity]
file = "s.nc"
variable = "s_an"
[fields.dic]
file = "dic.nc"
variable = "TCO2"
[npp.vgpm]
files = "npp/vgpm.*.hdf*"
years = [2010, 2010]
[traps]
file = "traps.csv"
{extra}
""")
    return str(r), g


def _cli(*args):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", *args], capture_output=True, text=True, env=env)


def test_data_build_check_and_world(tmp_path):
    recipe, g = _recipe(tmp_path)
    out = str(tmp_path / "inputs.h5")
    r = _cli("data", "build", recipe, "--out", out, "--json", str(tmp_path / "b.json"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "b.json").read_text())
    assert s["fields"] == ["dic", "po4", "salinity", "temperature"] and s["traps"] == 1
    xr = pytest.importorskip("xarray", reason="xarray (Debian python3-xarray) checks the file's readability")
    pytest.importorskip("h5netcdf", reason="h5netcdf engine for xarray")
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["po4"].dims == ("lat", "lon", "depth") and ds["po4"].attrs["units"] == "mmol m-3"
        assert ds["npp_vgpm"].dims == ("lat", "lon") and ds["trap_flux"].dims == ("station",)
    from bcp_hpc.data.inputs import InputsFile
    with InputsFile(out) as f:
        po4 = f.field("po4", g)
        filled = g.from3d(f.array("po4_filled")).astype(bool)
        dic = f.field("dic", g)
    assert np.isfinite(po4).all()                       # needed by the model: filled everywhere
    assert filled[g.box_lat < -70].all() or not (g.box_lat < -70).any()
    assert np.isnan(dic).any() is False or True
    r = _cli("data", "check", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 errors" in r.stdout
    # the world takes its forcing from the file
    from bcp_hpc.operators.world import load_world
    w = load_world("tiny", inputs=out)
    np.testing.assert_allclose(w.dip_gamma, np.maximum(po4, 0.05))
    with InputsFile(out) as f:
        np.testing.assert_array_equal(w.npp("vgpm"), f.npp("vgpm", g))
    # a file built for another grid is refused
    with pytest.raises(InputError, match="built for another grid"):
        load_world("embedded", inputs=out)


def test_data_build_bad_input_leaves_nothing(tmp_path):
    recipe, g = _recipe(tmp_path, extra='[fields.o2]\nfile = "p.nc"\nvariable = "o2_an"\n')
    out = tmp_path / "inputs.h5"
    r = _cli("data", "build", recipe, "--out", str(out))
    assert r.returncode == 2
    assert "p.nc" in r.stderr and "o2_an" in r.stderr and "variable not found" in r.stderr
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".inputs.h5")]
    bad = tmp_path / "bad.toml"
    bad.write_text('[fields.po4]\nfile = "p.nc"\nvariable = "p_an"\ncolour = "blue"\n')
    r = _cli("data", "build", str(bad), "--out", str(out))
    assert r.returncode == 2 and "colour" in r.stderr and not out.exists()


def test_synthetic_npp_products_differ_like_real_ones(embedded):
    from bcp_hpc.data.npp import global_npp_pg_c_per_yr
    from bcp_hpc.grid.embedded import NPP_TARGET_PG_C_PER_YR, synthetic_npp
    maps = {p: synthetic_npp(embedded, p) for p in ("vgpm", "cbpm", "cafe")}
    for p, m in maps.items():
        assert abs(global_npp_pg_c_per_yr(m, embedded) - NPP_TARGET_PG_C_PER_YR[p]) < 1e-9
        assert 48 <= NPP_TARGET_PG_C_PER_YR[p] <= 60
    s = embedded.mask[:, :, 0]
    for a, b in (("vgpm", "cbpm"), ("vgpm", "cafe"), ("cbpm", "cafe")):
        assert np.corrcoef(maps[a][s], maps[b][s])[0, 1] < 0.99     # different patterns, not rescalings


def test_ocim2_prebinned_fields_load_and_pass_check():
    if not os.path.exists(os.path.join(OCIM2_DIR, "M3d91x180x24.mat")):
        pytest.skip("OCIM2 fields not found (../shared absent)")
    from bcp_hpc.data.catalog import open_data
    d = open_data(OCIM2_DIR)
    g = d.grid()
    po4 = d.field("po4", g)
    assert po4.shape == (g.nwet,) and np.isfinite(po4).all() and 1.5 < np.mean(po4) < 2.5
    obs = d.field("po4_obs", g)
    assert 70000 < np.isfinite(obs).sum() < 80000
    r = _cli("data", "check", OCIM2_DIR)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 errors" in r.stdout and "po4 " in r.stdout


def test_data_build_refuses_impossible_values_and_reads_real_unit_spellings(tmp_path):
    """A negative phosphate is an error naming the file and variable (nothing written); the NPP units of
    the real products ("mg C m**-2 day**-1") are accepted, and a recipe's units key overrides an odd one."""
    from bcp_hpc.data.units import canonical_units
    assert canonical_units("mg C m**-2 day**-1") == canonical_units("mg C m-2 d-1") == "mgC/m2/d"
    recipe, g = _recipe(tmp_path)
    lat, lon = centres(30, 90, -90), centres(60, -180, 180)
    depth = np.array([0, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 4000, 5000, 5800.0])
    write_woa_like(str(tmp_path / "neg.nc"), np.full((depth.size, 30, 60), -1.0), lat, lon, depth, variable="p_an")
    text = open(recipe).read().replace('[fields.po4]\nfile = "p.nc"', '[fields.po4]\nfile = "neg.nc"')
    bad = tmp_path / "neg.toml"
    bad.write_text(text)
    out = tmp_path / "neg.h5"
    r = _cli("data", "build", str(bad), "--out", str(out))
    assert r.returncode == 2 and "neg.nc" in r.stderr and "p_an" in r.stderr and "negative" in r.stderr
    assert not out.exists()
    # the NPP files with the odd spelling, and a units override for a file without any
    os.makedirs(tmp_path / "npp2", exist_ok=True)
    for mo in range(12):
        doy = (np.datetime64(f"2011-{mo + 1:02d}-01") - np.datetime64("2011-01-01")).astype(int) + 1
        write_op_hdf4(str(tmp_path / "npp2" / f"cbpm.2011{doy:03d}.hdf"), np.full((30, 60), 400.0),
                      units="mg C m**-2 day**-1" if mo % 2 else None)
    good = tmp_path / "units.toml"
    good.write_text(open(recipe).read() + '[npp.cbpm]\nfiles = "npp2/cbpm.*.hdf"\nunits = "mg C m-2 d-1"\n')
    r = _cli("data", "build", str(good), "--out", str(tmp_path / "u.h5"))
    assert r.returncode == 0, r.stderr
