"""The joint model's choices of the group's code (spec §2.2, §3.3, §5.1, §8): CO2SYS v1.01 borate, the
reoptNature uptake P:C, DOC in the objective; and what each run records about them."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bcp_hpc.cycles.pco.model import joint_model
from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.inversion.objective import Objective, Observation
from bcp_hpc.models.system import ModelSystem
from bcp_hpc.operators.world import load_world
from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.solvers.steady import SteadyState

PETSc = import_petsc4py()


@pytest.fixture(scope="module")
def world():
    return load_world("tiny")


def _system(world, **kw):
    m = joint_model(world, world.npp(), 2.1, **kw)
    return m, ModelSystem(m, DistributedGrid(world.grid, PETSc.COMM_WORLD), world.T)


def test_reopt_nature_uptake_is_the_gm15_pc_inside_the_power(world):
    """N = NPP/(2 dz) (0.006 + 0.0069 DIP_obs) in the euphotic boxes (derived here from the recipe), and the
    local derivatives of the model with it are exact."""
    m, sysm = _system(world)
    g = world.grid
    ez = g.euphotic
    npp = world.npp()[g.box_ilat, g.box_ilon] * 365.0 / 12.0          # mmol C m-2 yr-1
    po4 = np.maximum(world.dip_gamma, 0.05)
    expect = npp / (2 * g.box_dz) * (0.006 + 0.0069 * po4)
    assert np.allclose(m.fields["N"][ez], expect[ez], rtol=1e-13)
    assert m.variant["uptake_pc"] == "reoptNature" and m.variant["borate"] == "v1.01"
    with SteadyState(sysm, prefix="gm15_") as ss:
        ss.solve()
        err = sysm.check_derivatives(ss.u)
    assert err["first"] < 1e-6 and err["second"] < 1e-5, err
    sysm.destroy()


def test_a_constant_pc_only_rescales_alpha(world):
    """Spec §2.2: a constant factor c inside the power rescales alpha by c^beta; states are unchanged."""
    from bcp_hpc.cycles.phosphorus.processes import uptake_field_dict, uptake_fields
    g = world.grid
    ma, sa = _system(world, uptake_pc="constant")                          # P:C = 1/117
    mb, sb = _system(world, uptake_pc="constant")
    po4 = np.maximum(world.dip_gamma, 0.05)
    mb.fields.update(uptake_field_dict(*uptake_fields(g, world.npp(), po4, "bgc", p_to_c=np.full(g.nwet, 1 / 100))))
    sb.local_fields.update({k: np.asarray(v)[sb.loc] for k, v in mb.fields.items() if np.ndim(v) == 1})
    beta = ma.parameters["beta"].value
    mb.parameters.set(alpha=ma.parameters["alpha"].value * (100 / 117) ** beta)
    states = []
    for sysm in (sa, sb):
        with SteadyState(sysm, prefix="pcinv_") as ss:
            ss.solve()
            states.append(sysm.to_natural(ss.u))
        sysm.destroy()
    assert np.abs(states[0] - states[1]).max() <= 1e-9 * np.abs(states[0]).max()


@pytest.fixture(scope="module")
def doc_case(world):
    m, sysm = _system(world)
    with SteadyState(sysm, prefix="doctruth_") as ss:
        ss.solve()
        X = sysm.to_natural(ss.u)
    rng = np.random.default_rng(8)

    def obs(field):
        o = field * (1 + 0.02 * rng.standard_normal(field.size))
        o[rng.random(field.size) < 0.5] = np.nan
        return o
    names = m.tracer_names
    base = [Observation(nm, obs(X[names.index(nm)])) for nm in ("DIP", "DIC", "ALK", "O2")]
    doc = Observation("DOC", obs(m.observable("DOC", X)), combination=m.combination("DOC"))
    yield m, sysm, base, doc
    sysm.destroy()


def test_doc_term_of_the_objective(doc_case, world):
    """With DOC: f = f without DOC + the DOC term computed here from the state (DOC_s + DOC_l + DOC_r, spec
    §5.2 weights and variance); the gradient and Hessian against central differences."""
    m, sysm, base, doc = doc_case
    x0 = m.parameters.get_x() + 0.01
    off = Objective(sysm, base, prefix="docoff_")
    f_off = off.evaluate(x0, 0)[0]
    off.destroy()
    on = Objective(sysm, base + [doc], prefix="docon_")
    f_on, g, H = on.evaluate(x0, 2)
    state = on.state_to_natural()
    total = state[m.tracer_names.index("DOCs")] + state[m.tracer_names.index("DOCl")] + \
        state[m.tracer_names.index("DOCr")]
    y = doc.values
    ok = np.isfinite(y)
    w = world.grid.box_volume[ok] / world.grid.box_volume[ok].sum()
    var = (w * (y[ok] - (w * y[ok]).sum()) ** 2).sum()
    assert f_on == pytest.approx(f_off + 0.5 / var * (w * (total[ok] - y[ok]) ** 2).sum(), rel=1e-10)
    h = 1e-5
    for k in (0, 7, 8, 10, 15):
        e = np.zeros_like(x0)
        e[k] = h
        fd = (on.evaluate(x0 + e, 0)[0] - on.evaluate(x0 - e, 0)[0]) / (2 * h)
        assert fd == pytest.approx(g[k], rel=1e-4, abs=1e-6 * np.abs(g).max()), k
        col = (on.evaluate(x0 + e, 1)[1] - on.evaluate(x0 - e, 1)[1]) / (2 * h)
        assert np.allclose(col, H[:, k], rtol=1e-3, atol=1e-5 * np.abs(H).max()), k
    fwd = Objective(sysm, base + [doc], prefix="docfwd_", hessian="forward")
    _, g_f, H_f = fwd.evaluate(x0, 2)
    assert np.allclose(H, H_f, rtol=1e-6, atol=1e-8 * np.abs(H).max())
    fwd.destroy()
    on.destroy()


def test_outlier_filter_of_the_observations():
    """Spec §A.1: negatives and values outside the 0.1-99.9 percentiles are dropped; DIP below 0.05 too."""
    from bcp_hpc.data.observations import filter_observations
    rng = np.random.default_rng(0)
    v = rng.normal(60.0, 5.0, 20_000)
    v[:5] = [-1.0, 1e4, np.nan, 0.0, 59.0]
    out = filter_observations(v, "DOC")
    assert np.isnan(out[0]) and np.isnan(out[1]) and np.isnan(out[2]) and out[4] == 59.0
    kept = v[np.isfinite(v) & (v >= 0)]
    lo, hi = np.percentile(kept, [0.1, 99.9])
    assert np.nanmin(out) >= lo and np.nanmax(out) <= hi
    assert 0.997 < np.isfinite(out).sum() / kept.size < 0.999
    dip = filter_observations(np.array([0.01, 0.04, 0.06, 1.0, 2.0, 3.0]), "DIP", percentiles=(0, 100))
    assert np.isnan(dip[:2]).all() and np.isfinite(dip[2:]).all()


def test_each_run_records_its_choices(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\ncycle = "PCO"\nborate = "rounded"\n[world]\nsource = "tiny"\n'
                   '[joint]\nobserved = ["DIP", "DIC", "ALK", "O2", "DOC"]\n[inversion]\nmax_it = 3\n')
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "invert", "--config", str(cfg), "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "o" / "joint_result.json").read_text())
    v = res["variant"]
    assert v["borate"] == "rounded" and v["uptake_pc"] == "reoptNature" and v["labile"] is True
    assert v["observed"] == ["DIP", "DIC", "ALK", "O2", "DOC"] and v["noise_scale"] == "code"
    assert "DOC" in res["diagnostics"]["fit"]
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "variants.md")).read()
    for item in range(1, 28):
        assert f"| 8.{item} |" in doc, item
