"""A cycle is a plug-in folder: a two-tracer toy cycle declared in a temporary folder (nothing changed
anywhere else) is found through $BCP_CYCLE_PATH and runs through the public CLI: info, invert (a twin
inversion that recovers its truth), slurm render."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

TOY_INIT = '''
"""Toy cycle: a nutrient N taken up in the euphotic zone into dissolved organic N (DON), which
remineralises back; a weak restoring holds the inventory."""
from bcp_hpc.constants import SECONDS_PER_YEAR
from bcp_hpc.cycles import Cycle
from bcp_hpc.models.base import Model, Tracer
from bcp_hpc.models.parameters import Parameter, ParameterSet
from bcp_hpc.models.processes import Process
from bcp_hpc.settings import Setting


def parameters():
    return ParameterSet([
        Parameter("mu", 1.0e-7, "s-1", "uptake rate", optimize=True, transform="log", bounds=(1e-12, 1e-3)),
        Parameter("k_don", 3.0e-8, "s-1", "DON remineralisation rate", optimize=True, transform="log",
                  bounds=(1e-12, 1e-3)),
        Parameter("kappa_g", 1.0 / (1e3 * SECONDS_PER_YEAR), "s-1", "restoring rate", transform="log",
                  bounds=(1e-20, 1e-3)),
    ])


def build(setup, product):
    mean = float(setup.run.model.toy_mean)
    processes = [
        Process("uptake", lambda c, p, f, r: p["mu"] * f["light"] * c["N"], {"N": -1, "DON": 1}),
        Process("remineralisation", lambda c, p, f, r: p["k_don"] * c["DON"], {"DON": -1, "N": 1}),
        Process("restoring", lambda c, p, f, r: p["kappa_g"] * (mean - c["N"]), {"N": 1}),
    ]
    return Model("TOY", [Tracer("N", "mmol m-3"), Tracer("DON", "mmol m-3")], parameters(),
                 fields={"light": setup.grid.euphotic.astype(float)}, processes=processes,
                 description="toy nutrient-DON cycle")


CYCLE = Cycle(
    name="TOY", title="toy nutrient + DON cycle", tracers=("N", "DON"), build=build,
    truth=lambda setup, model: {**model.parameters.values(), "mu": 2.0e-7, "k_don": 5.0e-8},
    twin_observed=lambda setup, state: [("N", 0.002), ("DON", 0.002)],
    diagnostics="diagnostics:run",
    model_settings=(Setting("toy_mean", 1.0, "mean nutrient the restoring holds", units="mmol m-3",
                            minimum=0.0),),
)
'''

TOY_DIAGNOSTICS = '''
def run(setup, model, state):
    """Global uptake from the model's own process."""
    rates = model.rates(state)
    return {"uptake_mmol_s": float((rates["uptake"] * setup.grid.box_volume).sum()),
            "budget": model.budget(state, setup.grid.box_volume)}
'''


@pytest.fixture()
def toy_path(tmp_path):
    folder = tmp_path / "plugins" / "toy"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(textwrap.dedent(TOY_INIT))
    (folder / "diagnostics.py").write_text(textwrap.dedent(TOY_DIAGNOSTICS))
    return str(tmp_path / "plugins")


def cli(*args, env_path, cwd=None):
    env = dict(os.environ, BCP_CYCLE_PATH=env_path, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=900)


def test_a_toy_cycle_in_its_own_folder_runs_through_the_cli(toy_path, tmp_path):
    r = cli("info", env_path=toy_path)
    assert r.returncode == 0 and "TOY (toy nutrient + DON cycle" in r.stdout, r.stderr
    cfg = tmp_path / "toy.toml"
    cfg.write_text('[model]\ncycle = "TOY"\ntoy_mean = 1.5\n[world]\nsource = "tiny"\n'
                   '[observations]\ncoverage = 0.8\n')
    out = tmp_path / "out"
    r = cli("invert", "--config", str(cfg), "--out", str(out), env_path=toy_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "converged after" in r.stdout
    res = json.loads((out / "result.json").read_text())
    assert res["cycle"] == "TOY" and res["converged"] and set(res["parameters"]) == {"mu", "k_don"}
    for name, truth in (("mu", 2.0e-7), ("k_don", 5.0e-8)):
        p = res["parameters"][name]
        assert abs(np.log(p["value"]) - np.log(truth)) <= 2 * p["sigma_x"], (name, p, truth)
    budget = res["diagnostics"]["budget"]
    assert budget["uptake"]["N"] == pytest.approx(-budget["uptake"]["DON"])
    assert res["diagnostics"]["uptake_mmol_s"] == pytest.approx(budget["uptake"]["DON"], rel=1e-12)
    import xarray as xr
    with xr.open_dataset(out / "state.h5", engine="h5netcdf") as ds:
        assert ds["N"].dims == ("depth", "lat", "lon") and ds["N"].attrs["units"] == "mmol m-3"
        assert abs(float(ds["N"].mean()) - 1.5) < 0.5
    script = tmp_path / "toy.slurm"
    r = cli("slurm", "render", "invert", "--config", str(cfg), "--out", str(script), env_path=toy_path)
    assert r.returncode == 0, r.stderr
    text = script.read_text()
    assert "bcp-hpc invert --cycle TOY --config" in text and "--resume" in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_a_broken_plugin_is_named(tmp_path):
    folder = tmp_path / "plugins" / "broken"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("raise RuntimeError('half-written cycle')\n")
    r = cli("info", env_path=str(tmp_path / "plugins"))
    assert r.returncode == 2 and "broken" in r.stderr and "half-written cycle" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_readme_example_cycle_runs(tmp_path):
    """The cycle printed in README.md, as it stands there, with a one-function diagnostics module."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "package"))
    from test_docs import readme_example
    folder = tmp_path / "plugins" / "toy"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(readme_example())
    (folder / "diagnostics.py").write_text("def run(setup, model, state):\n    return {}\n")
    out = tmp_path / "out"
    r = cli("invert", "--cycle", "TOY", "--world", "tiny", "--out", str(out), env_path=str(tmp_path / "plugins"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())
    assert res["converged"] and res["truth"]["mu"] == 2e-7
    mu = res["parameters"]["mu"]
    assert abs(np.log(mu["value"]) - np.log(2e-7)) <= 2 * mu["sigma_x"]
