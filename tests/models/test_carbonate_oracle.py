"""The carbonate chemistry against CO2SYS v1.01's total borate (derived here from v1.01's formula) and
against PyCO2SYS with the options that match CO2SYS v1.01 and that borate: pH, CO2*, pCO2, the
constants and the derivatives of CO2* the model's Jacobian uses."""
import numpy as np
import pytest

from bcp_hpc.models import ad2, carbonate


def test_total_borate_is_co2sys_v101s_unless_rounded():
    s = np.array([30.0, 34.5, 35.0, 37.2])
    k = carbonate.constants(np.full(4, 10.0), s)
    # CO2SYS v1.01 (Lewis & Wallace): TB = 0.000232 / 10.811 * (S / 1.80655) mol kg-1
    assert np.allclose(k.TB, 0.000232 / 10.811 * (s / 1.80655), rtol=1e-15)
    assert np.allclose(k.TB / (4.1576e-4 * s / 35.0), 1.0, rtol=2e-5)
    r = carbonate.constants(np.full(4, 10.0), s, borate="rounded")
    assert np.allclose(r.TB, 4.157e-4 * s / 35.0, rtol=1e-15)
    assert np.allclose(k.TB / r.TB - 1.0, 1.4e-4, atol=0.1e-4)
    with pytest.raises(ValueError, match="borate"):
        carbonate.constants(np.full(4, 10.0), s, borate="lee2010")
    # the rounded borate lowers CO2* by about 5e-5 relative at the same DIC and ALK (spec §3.3)
    dic, alk = np.full(4, 2050.0), np.full(4, 2330.0)
    rel = carbonate.co2_star(dic, alk, r) / carbonate.co2_star(dic, alk, k) - 1.0
    assert np.all((rel < -2e-5) & (rel > -1e-4)), rel


@pytest.fixture(scope="module")
def pyco2():
    return pytest.importorskip("PyCO2SYS", reason="PyCO2SYS (pip, installed by scripts/setup.sh) is the oracle")


@pytest.mark.parametrize("borate", ["v1.01", "rounded"])
def test_against_pyco2sys(pyco2, borate):
    rng = np.random.default_rng(3)
    n = 300
    T = rng.uniform(-1.8, 30.0, n)
    S = rng.uniform(31.0, 38.0, n)
    P = rng.choice([0.0, 18.07, 100.0, 500.0], n)
    PO4 = rng.uniform(0.0, 3.0, n)
    Si = rng.uniform(0.0, 120.0, n)
    DIC = rng.uniform(1850.0, 2300.0, n)
    ALK = DIC + rng.uniform(60.0, 350.0, n)
    k = carbonate.constants(T, S, PO4, Si, P, borate=borate)

    def oracle(alk, dic):
        return pyco2.sys(par1=alk, par2=dic, par1_type=1, par2_type=2, salinity=S, temperature=T, pressure=P,
                         total_silicate=Si, total_phosphate=PO4, opt_k_carbonic=4, opt_pH_scale=1,
                         opt_k_bisulfate=1, opt_total_borate=1, opt_gas_constant=1, total_borate=k.TB * 1e6)
    r = oracle(ALK, DIC)
    rel = lambda a, b: float(np.abs(np.asarray(a) / np.asarray(b) - 1.0).max())  # noqa: E731
    assert rel(k.K1, r["k_carbonic_1"]) < 1e-12 and rel(k.K2, r["k_carbonic_2"]) < 1e-12
    assert rel(k.KB, r["k_borate"]) < 1e-12 and rel(k.KW, r["k_water"]) < 1e-12
    assert rel(k.KP1, r["k_phosphoric_1"]) < 1e-12 and rel(k.KSi, r["k_silicate"]) < 1e-12
    co2 = carbonate.co2_star(DIC, ALK, k)
    assert rel(co2, r["CO2"]) < 1e-11
    assert rel(k.K0, r["CO2"] / r["pCO2"]) < 1e-11                        # K0 includes the fugacity factor
    assert rel(-np.log10(carbonate.solve_hydrogen(DIC * 1e-6, ALK * 1e-6, k)), r["pH"]) < 1e-12
    # the exact derivatives the Jacobian uses, against central differences of the oracle
    d = carbonate.co2_star(ad2.AD2.variable(DIC, 0, 2, n), ad2.AD2.variable(ALK, 1, 2, n), k)
    h = 1e-2
    d_dic = (oracle(ALK, DIC + h)["CO2"] - oracle(ALK, DIC - h)["CO2"]) / (2 * h)
    d_alk = (oracle(ALK + h, DIC)["CO2"] - oracle(ALK - h, DIC)["CO2"]) / (2 * h)
    assert rel(d.g[0], d_dic) < 1e-8 and rel(d.g[1], d_alk) < 1e-8


def test_hydrogen_ion_converges_quadratically_to_the_root(monkeypatch):
    """H+ from DIC and ALK over the ocean's range: the alkalinity balance holds to round-off at the
    returned H+, and the safeguarded Newton iteration needs at most 15 iterations (two residual
    evaluations each: value and complex-step slope), not a bisection to machine precision."""
    from bcp_hpc.models import carbonate as cb
    rng = np.random.default_rng(5)
    n = 20_000
    k = cb.constants(rng.uniform(-2, 32, n), rng.uniform(30, 40, n))
    dic = rng.uniform(1700, 2400, n) * 1e-6
    alk = rng.uniform(2000, 2600, n) * 1e-6
    real = cb.alkalinity_residual
    calls = []
    monkeypatch.setattr(cb, "alkalinity_residual", lambda *a: calls.append(1) or real(*a))
    H = cb.solve_hydrogen(dic, alk, k)
    assert len(calls) <= 30, len(calls)
    assert np.abs(real(H, dic, alk, k)).max() <= 1e-14 * alk.max()
    assert np.all((H > 1e-10) & (H < 1e-6))        # pH 6..10 over these random pairs
