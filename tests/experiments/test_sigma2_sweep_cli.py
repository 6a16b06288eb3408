import json
import os
import subprocess
import sys

import h5py
import numpy as np


def test_sigma2_sweep_cli_outputs_and_resume(tmp_path):
    out = tmp_path / "sweep"
    js = tmp_path / "sweep.json"
    cmd = [sys.executable, "-m", "bcp_hpc.cli.main", "experiment", "sigma2-sweep", "--world", "tiny",
           "--sigma2", "0,0.25,0.5", "--no-sensitivity-runs", "--out", str(out), "--json", str(js)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(js.read_text())
    assert [run["sigma2"] for run in d["runs"]] == [0.0, 0.25, 0.5]
    for run in d["runs"]:
        assert set(run["parameters"]) == {"alpha", "beta", "b", "kappa_d"}
        assert all({"value", "sigma", "units"} <= set(v) for v in run["parameters"].values())
        assert run["r2_dip"] > 0.9
        # allocation adds up
        assert np.isclose(run["npp_pop_pg_c_per_yr"] + run["npp_dops_pg_c_per_yr"] + run["npp_dopl_pg_c_per_yr"],
                          run["npp_pg_c_per_yr"], rtol=1e-10)
    # the fit NPP = 1/(a + b sigma2) reproduces the runs it was fitted to
    a, b = d["fit"]["a"], d["fit"]["b"]
    npp = np.array([run["npp_pg_c_per_yr"] for run in d["runs"]])
    s2 = np.array([run["sigma2"] for run in d["runs"]])
    assert np.allclose(1 / (a + b * s2), npp, rtol=0.05) and b < 0
    # HDF5 with named dimensions and units
    with h5py.File(out / "sigma2_sweep.h5") as h:
        assert h["npp_map"].shape[0] == 3
        assert h["npp_map"].dims[1][0].name.endswith("lat")
        assert h["npp_pg_c_per_yr"].attrs["units"] == "Pg C yr-1"
    for f in ("table_S1_parameters.csv", "table_S2_allocation.csv", "summary.json", "resolved_config.json"):
        assert (out / f).exists()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    # the likelihood-ratio test of the twin's truth only where the model is the truth's (sigma2 = 0)
    lr = {}
    for tag in ("s2_0.00", "s2_0.25", "s2_0.50"):
        cred = json.loads((out / f"result_{tag}.json").read_text())["truth_credibility"]
        lr[tag] = cred["likelihood_ratio"]
    assert lr["s2_0.00"] is not None and lr["s2_0.25"] is None and lr["s2_0.50"] is None, lr
    # resume: nothing to redo, same table
    r2 = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=900)
    assert r2.returncode == 0 and "already done" in r2.stdout
    assert json.loads(js.read_text())["runs"] == d["runs"]
