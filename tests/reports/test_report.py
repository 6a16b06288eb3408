"""The report of a run: figures drawn from the saved arrays, report.html opened by a real browser,
CF-style NetCDF outputs, and bad input.

Runs made here on the tiny world: the main job (ideal age + a three-value sigma2 sweep) and a joint
P-C-O inversion whose inputs carry sediment-trap stations and an Earth-system model's POC flux (so
that the Taylor diagram has every kind of point)."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           OPENBLAS_NUM_THREADS="1")
CLI = [sys.executable, "-m", "bcp_hpc.cli.main"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def cli(*args, timeout=900):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=ENV, timeout=timeout)


def _trap_inputs(d):
    """A `data build` file for the tiny grid with trap stations at the four stations' model columns (three
    depths each) and one Earth-system model's epc100."""
    pytest.importorskip("netCDF4", reason="netCDF4 (Debian python3-netcdf4) writes the CMIP6-like file")
    from datafiles import centres, write_epc100

    from bcp_hpc.diagnostics.export_compare import STATIONS, station_column
    from bcp_hpc.operators.world import load_world
    g = load_world("tiny").grid
    rows = ["station,latitude,longitude,depth,POC_flux_mg_m2_d"]
    for s, (name, (lat, lon)) in enumerate(STATIONS.items()):
        i, j, _ = station_column(g, lat, lon)
        nz = int(g.mask[i, j, :].sum())
        for k, f100 in zip(range(1, min(nz, 4)), (1.0, 0.6, 0.4)):
            rows.append(f"{name},{g.lat[i]},{g.lon[j]},{g.zt[k]},{(20.0 + 15 * s) * f100}")
    (d / "traps.csv").write_text("\n".join(rows) + "\n")
    lat, lon = centres(30, -90, 90), centres(60, 0, 360)
    days = 365.0 * (np.arange(12) / 12.0 + 150) + 15
    v = 2e-7 * (1 + 0.5 * np.cos(np.deg2rad(lat))[None, :, None] * np.ones((12, 30, 60)))
    write_epc100(str(d / "epc100.nc"), v, lat, lon, days)
    (d / "traps.toml").write_text('[grid]\nsource = "tiny"\n[traps]\nfile = "traps.csv"\n'
                                  '[esm.TESTESM]\nfile = "epc100.nc"\nvariable = "epc100"\n')
    r = cli("data", "build", str(d / "traps.toml"), "--out", str(d / "traps.h5"))
    assert r.returncode == 0, r.stderr[-3000:]
    return str(d / "traps.h5")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("report_runs")
    main = cli("run", "--world", "tiny", "--sigma2", "0,0.25,0.5", "--no-sensitivity-runs", "--out", str(d / "run"))
    assert main.returncode == 0, main.stderr[-3000:]
    joint = cli("invert", "--cycle", "PCO", "--world", "tiny", "--inputs", _trap_inputs(d), "--out", str(d / "joint"))
    assert joint.returncode == 0, joint.stderr[-3000:]
    r = cli("report", str(d / "joint"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return {"dir": d, "main_stdout": main.stdout, "run": d / "run", "joint": d / "joint"}


def _fig(folder, name):
    return json.loads((folder / "figures" / f"{name}.json").read_text())


# ------------------------------------------------------------------ the main job and its figures

def test_main_job_prints_its_report_and_every_figure_is_an_image_of_its_size(runs):
    import matplotlib.image as mpimg
    m = re.search(r"^report: (.+report\.html)$", runs["main_stdout"], re.M)
    assert m and os.path.exists(m.group(1)), runs["main_stdout"][-2000:]
    for folder, expected in ((runs["run"], {"npp_maps", "npp_sigma2", "obs_vs_model", "sections_DIP", "age_section",
                                            "posterior_s2_0.00", "convergence"}),
                             (runs["joint"], {"npp_maps", "obs_vs_model", "export_maps", "doc_maps", "taylor",
                                              "sections_DIP", "sections_DIC", "sections_ALK", "sections_O2",
                                              "posterior", "convergence"})):
        names = {f[:-4] for f in os.listdir(folder / "figures") if f.endswith(".png")}
        assert expected <= names, (folder, expected - names)
        for n in names:
            img = mpimg.imread(str(folder / "figures" / f"{n}.png"))
            w, h = _fig(folder, n)["size_px"]
            assert img.shape[:2] == (h, w) and min(h, w) >= 300, (n, img.shape)
            assert img[..., :3].std() > 0.02, f"{n} is blank"
            svg = (folder / "figures" / f"{n}.svg").read_text()
            assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_figures_draw_the_saved_values(runs):
    run, joint = runs["run"], runs["joint"]
    summary = json.loads((run / "summary.json").read_text())
    drawn = _fig(run, "npp_sigma2")
    assert drawn["sigma2"] == [r["sigma2"] for r in summary["runs"]]
    assert drawn["npp_pg_c_per_yr"] == [r["npp_pg_c_per_yr"] for r in summary["runs"]]
    assert drawn["npp_pop_pg_c_per_yr"] == [r["npp_pop_pg_c_per_yr"] for r in summary["runs"]]
    assert drawn["fit"] == summary["fit"]
    # the histogram's R2 are the runs' own
    panels = _fig(run, "obs_vs_model")["panels"]
    for p, tag in zip(panels, ("s2_0.00", "s2_0.25", "s2_0.50")):
        res = json.loads((run / f"result_{tag}.json").read_text())
        assert p["r2"] == res["diagnostics"]["r2_dip"] and p["observed_boxes"] == res["diagnostics"]["n_obs_dip"]
    res = json.loads((joint / "joint_result.json").read_text())
    for p in _fig(joint, "obs_vs_model")["panels"]:
        assert p["r2"] == res["diagnostics"]["fit"][p["label"]]["r2"]
        assert p["observed_boxes"] == res["diagnostics"]["fit"][p["label"]]["n_obs"]
    # Taylor: the inverse run, the Henson export of every product and the ESM, at the saved statistics
    traps = res["diagnostics"]["traps"]
    pts = {p["label"]: p for p in _fig(joint, "taylor")["points"]}
    want = {"inverse, vgpm": traps["taylor"], "TESTESM": traps["esm"]["TESTESM"],
            **{f"Henson, {k}": v for k, v in traps["henson"].items()}}
    assert set(pts) == set(want) and len(traps["henson"]) == 3
    for label, t in want.items():
        for k in ("std_model", "std_obs", "r", "crmsd"):
            assert pts[label][k] == t[k], (label, k)
        assert pts[label]["normalised_std"] == pytest.approx(t["std_model"] / t["std_obs"], rel=1e-14)
        assert np.cos(pts[label]["angle_rad"]) == pytest.approx(t["r"], abs=1e-14)
    # posterior and convergence from the result and the iteration log
    post = _fig(joint, "posterior")
    assert post["eigenvalues"] == res["eigen"]["eigenvalues"]
    assert [p["value"] for p in post["parameters"]] == [res["parameters"][n]["value"] for n in res["posterior"]["names"]]
    log = [json.loads(x) for x in (joint / "iterations_invert.jsonl").read_text().splitlines() if x.strip()]
    assert _fig(joint, "convergence")["run"]["objective"] == [r["objective"] for r in log]


def test_independent_check_of_a_drawn_statistic(runs):
    """The Taylor statistics the figure draws, recomputed here from the model's saved POC flux map and
    the trap table (Martin fit per station), agree with the run's."""
    import h5py

    from bcp_hpc.data.inputs import InputsFile
    from bcp_hpc.diagnostics.export_compare import station_f100
    from bcp_hpc.operators.world import load_world
    g = load_world("tiny").grid
    with InputsFile(str(runs["dir"] / "traps.h5")) as f:
        trap3d = f.trap_fluxes(g)
    with h5py.File(runs["joint"] / "joint_state.h5") as h:
        f100 = h["poc_flux_100m_map_mg_c_m2_d"][()]
    st = station_f100(trap3d, g)
    used = [k for k, v in st.items() if v["f100_mg_c_m2_d"] is not None]
    m = np.array([f100[st[k]["i_lat"], st[k]["i_lon"]] for k in used])
    o = np.array([st[k]["f100_mg_c_m2_d"] for k in used])
    pt = {p["label"]: p for p in _fig(runs["joint"], "taylor")["points"]}["inverse, vgpm"]
    assert pt["std_model"] == pytest.approx(m.std(), rel=1e-10) and pt["std_obs"] == pytest.approx(o.std(), rel=1e-10)
    assert pt["r"] == pytest.approx(np.corrcoef(m, o)[0, 1], rel=1e-10)


# ------------------------------------------------------------------ the HTML in a real browser

def _browser_check(html_path, tmp_path):
    """Chromium opens a copy of the page with a probe script: every <img> complete with a natural size."""
    page = open(html_path).read()
    probe = ("<script>window.addEventListener('load',()=>{const r=[...document.images].map(i=>[i.alt,i.complete,"
             "i.naturalWidth,i.naturalHeight]);const p=document.createElement('pre');p.id='probe';"
             "p.textContent=JSON.stringify(r);document.body.appendChild(p);});</script>")
    probed = os.path.join(os.path.dirname(html_path), ".probe.html")
    with open(probed, "w") as fh:
        fh.write(page.replace("</body>", probe + "</body>"))
    try:
        r = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}", "--dump-dom",
                            "--virtual-time-budget=15000", "file://" + probed], capture_output=True, text=True,
                           timeout=180)
    finally:
        os.remove(probed)
    m = re.search(r'<pre id="probe">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stdout[-2000:] + r.stderr[-2000:]
    import html as h
    return json.loads(h.unescape(m.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("which", ["run", "joint"])
def test_report_opens_in_chromium_with_every_image_decoded(runs, which, tmp_path):
    import matplotlib.image as mpimg
    folder = runs[which]
    html_path = str(folder / "report.html")
    images = _browser_check(html_path, tmp_path)
    assert len(images) >= 7
    for alt, complete, w, h in images:
        assert complete and w > 100 and h > 100, (alt, complete, w, h)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome2'}", f"--screenshot={shot}",
                    "--window-size=1200,1800", "file://" + html_path], capture_output=True, timeout=180)
    img = mpimg.imread(str(shot))
    assert img.shape[0] == 1800 and img[..., :3].std() > 0.05, "blank screenshot"
    # offline and whole: no address outside the folder, every referenced file exists
    page = open(html_path).read()
    refs = re.findall(r'(?:href|src)="([^"]+)"', page) + re.findall(r"(?:href|src)='([^']+)'", page)
    assert not [r for r in refs if re.match(r"[a-z]+://", r)], "the report must open offline"
    for r in refs:
        if r.startswith("#") or r.startswith("data:"):
            continue
        assert os.path.exists(os.path.join(folder, r)), r


def test_report_content_names_the_run(runs):
    page = (runs["run"] / "report.html").read_text()
    for words in ("main job", "Table S1", "Table S2", "NPP(σ₂) = 1/(", "Solver paths", "block-triangular",
                  "petsc", "Resolved configuration", "Model variant"):
        assert words in page, words
    page = (runs["joint"] / "report.html").read_text()
    for words in ("Figure 4", "R²", "deviation (σ)", "Parameters: PCO inversion"):
        assert words in page, words
    # every iteration records the largest rank's memory; the report shows the peak of the run
    its = [json.loads(x) for x in (runs["joint"] / "iterations_invert.jsonl").read_text().splitlines()]
    for it in its:
        assert 0 < it["rss_bytes_largest_rank"] <= it["peak_rss_bytes_largest_rank"] < 2**40, it
    peaks = [it["peak_rss_bytes_largest_rank"] for it in its]
    assert all(b >= a - 2**20 for a, b in zip(peaks, peaks[1:])), peaks     # a peak (the counters lag by pages)
    m = re.search(r"peak memory of the largest rank \(GiB\)</th></tr><tr><td>[^<]*</td><td>[^<]*</td>"
                  r"<td>[^<]*</td><td>([0-9.]+)</td>", page)
    assert m and float(m.group(1)) == pytest.approx(max(peaks) / 2**30, abs=0.006), m


# ------------------------------------------------------------------ NetCDF outputs

def test_gridded_outputs_open_in_xarray_with_coordinates_and_units(runs):
    xr = pytest.importorskip("xarray")
    for path, var, units in ((runs["run"] / "state_s2_0.25.h5", "DIP", "mmol m-3"),
                             (runs["run"] / "ideal_age.h5", "ideal_age", "yr"),
                             (runs["joint"] / "joint_state.h5", "DOCl", "mmol m-3")):
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            assert set(ds[var].dims) == {"depth", "lat", "lon"}
            assert ds[var].attrs["units"] == units and ds[var].attrs["long_name"]
            assert ds["lat"].attrs["units"] == "degrees_north" and ds["depth"].attrs["positive"] == "down"
            assert ds["box_volume"].attrs["units"] == "m3" and ds["area"].dims == ("lat", "lon")
            assert ds["basin"].attrs["flag_meanings"] == "atlantic pacific indian"
            land = ~np.isfinite(ds["box_volume"].values)
            assert land.any() and np.isnan(ds[var].values[land]).all()
    with xr.open_dataset(runs["joint"] / "joint_state.h5", engine="h5netcdf") as ds:
        for m in ("npp_satellite_map_mg_c_m2_d", "toc_export_map_mg_c_m2_d", "docl_export_map_mg_c_m2_d",
                  "docs_export_map_mg_c_m2_d", "docl_production_map_mg_c_m2_d", "henson_f100_cafe_map_mg_c_m2_d"):
            assert ds[m].dims == ("lat", "lon") and ds[m].attrs["units"] == "mg C m-2 d-1"
        # the maps integrate to the run's totals (Pg C yr-1)
        res = json.loads((runs["joint"] / "joint_result.json").read_text())["diagnostics"]
        area = ds["area"].values
        for m, total in (("toc_export_map_mg_c_m2_d", "toc_export_pg_c_per_yr"),
                         ("npp_satellite_map_mg_c_m2_d", "npp_satellite_pg_c_per_yr")):
            assert np.nansum(ds[m].values * area) * 365e-18 == pytest.approx(res[total], rel=1e-9)


# ------------------------------------------------------------------ bad input

def test_not_a_run_is_a_clear_error(tmp_path):
    r = cli("report", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "nowhere" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    r = cli("report", str(tmp_path / "empty"))
    assert r.returncode == 2 and "holds no results of a bcp-hpc run" in r.stderr
    assert not (tmp_path / "empty" / "report.html").exists()


def test_a_damaged_run_still_gets_a_report_that_names_what_is_missing(runs, tmp_path):
    d = tmp_path / "damaged"
    shutil.copytree(runs["run"], d, ignore=shutil.ignore_patterns("figures", "report.html"))
    os.remove(d / "state_s2_0.25.h5")
    (d / "result_s2_0.50.json").write_text('{"cut short')
    with open(d / "iterations_s2_0.00.jsonl", "a") as fh:
        fh.write('{"iteration": 99, "objec')
    r = cli("report", str(d))
    assert r.returncode == 0, r.stderr[-3000:]
    page = (d / "report.html").read_text()
    for words in ("state_s2_0.25.h5</code>: missing", "result_s2_0.50.json</code>: unreadable",
                  "iterations_s2_0.00.jsonl</code>: line"):
        assert words in page, words
    assert (d / "figures" / "npp_maps.png").exists() and (d / "figures" / "npp_sigma2.png").exists()


def test_plot_draws_one_figure_or_says_why_not(runs, tmp_path):
    r = cli("plot", "taylor", str(runs["joint"]), "--out", str(tmp_path / "f"))
    assert r.returncode == 0 and (tmp_path / "f" / "taylor.png").exists() and (tmp_path / "f" / "taylor.svg").exists()
    r = cli("plot", "taylor", str(runs["run"]), "--out", str(tmp_path / "g"))
    assert r.returncode == 2 and "no taylor figure" in r.stderr and "trap" in r.stderr
    assert not (tmp_path / "g" / "taylor.png").exists()
    r = cli("plot", "npp-sigma2", str(runs["run"]), "--out", str(tmp_path / "g"))
    assert r.returncode == 0 and (tmp_path / "g" / "npp_sigma2.png").exists()


def test_figure_functions_are_importable_and_draw_from_arrays(tmp_path):
    """The functions behind the figures take plain arrays (for a user's own notebook)."""
    from bcp_hpc.reports.figures import npp_vs_sigma2, taylor_diagram
    s2 = np.array([0.0, 0.2, 0.4])
    npp = 1 / (0.1 - 0.1 * s2)
    paths = npp_vs_sigma2(s2, npp, 0.8 * npp, {"a": 0.1, "b": -0.1, "r2": 1.0}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["npp_sigma2.png", "npp_sigma2.svg"]
    pts = [{"label": "a", "group": "inverse model", "std_model": 2.0, "std_obs": 4.0, "r": 0.5, "crmsd": 3.4}]
    taylor_diagram(pts, str(tmp_path))
    d = json.loads((tmp_path / "taylor.json").read_text())
    assert d["points"][0]["normalised_std"] == 0.5 and d["points"][0]["angle_rad"] == pytest.approx(np.pi / 3)


def test_single_p_inversion_report(tmp_path):
    r = cli("invert", "--world", "tiny", "--out", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr[-2000:]
    r = cli("report", str(tmp_path / "p"), "--out", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr[-2000:]
    figs = {f[:-4] for f in os.listdir(tmp_path / "rep" / "figures") if f.endswith(".png")}
    assert {"npp_maps", "obs_vs_model", "sections_DIP", "posterior", "convergence"} <= figs
    assert not (tmp_path / "p" / "report.html").exists()          # --out elsewhere leaves the run folder as it was
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "taylor</b>: no inversion compared with trap stations" in page      # says why a figure is absent
    res = json.loads((tmp_path / "p" / "result.json").read_text())
    drawn = _fig(tmp_path / "rep", "npp_maps")
    import h5py
    with h5py.File(tmp_path / "p" / "state.h5") as h:
        assert drawn["panels"][0]["column_mean"] == pytest.approx(np.nanmean(h["npp_map_mg_c_m2_d"][()]), rel=1e-12)
    assert _fig(tmp_path / "rep", "obs_vs_model")["panels"][0]["r2"] == res["diagnostics"]["r2_dip"]
