"""Twin experiment on the embedded world (issue: recovery within 2 sigma in <= 30 iterations)."""
import numpy as np
import pytest

from bcp_hpc.cli.pipeline import options_scope
from bcp_hpc.errors import InputError
from bcp_hpc.experiments.description import RunDescription
from bcp_hpc.experiments.runner import Setup, run_inversion
from bcp_hpc.experiments.twin import synthetic_observations


def test_likelihood_noise_matches_the_volume_weighted_error_model():
    """Noise drawn as the objective assumes: the volume-weighted mean square of the noise
    equals noise^2, so 2f/N_obs estimates the error variance without the Kish bias of iid noise."""
    rng = np.random.default_rng(1)
    vol = np.exp(rng.normal(0.0, 1.0, 200_000))          # volumes spanning a factor ~50
    truth = np.zeros(vol.size)
    for model in ("likelihood", "iid"):
        obs, std = synthetic_observations(truth, vol, 0.05, 0.5, seed=7, noise_model=model)
        ok = np.isfinite(obs)
        assert 0.48 < ok.mean() < 0.52
        w = vol[ok] / vol[ok].sum()
        weighted_ms = (w * obs[ok] ** 2).sum()
        n, kish = ok.sum(), ok.sum() * (w ** 2).sum()
        assert kish > 1.5                                 # unequal weights: few effective observations
        if model == "likelihood":
            assert np.allclose(std ** 2 * vol, 0.05 ** 2 * vol[ok].mean())
            assert abs(weighted_ms / 0.05 ** 2 - 1.0) < 0.02
        else:
            assert np.all(std == 0.05)
            assert abs(weighted_ms / 0.05 ** 2 - 1.0) < 0.02 * np.sqrt(kish) + 0.02
        assert n > 0
    with pytest.raises(InputError, match="noise_model"):
        synthetic_observations(truth, vol, 0.05, 0.5, seed=7, noise_model="poisson")
    with pytest.raises(InputError, match="coverage"):
        synthetic_observations(truth, vol, 0.05, 0.0, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_twin_on_the_embedded_world_recovers_the_truth_within_two_sigma(tmp_path, seed):
    """The main job's twin (sigma2 = 0, observations from known parameters + noise) on the
    embedded default world itself: every parameter within 2 posterior sigma, <= 30 iterations."""
    run = RunDescription.load(None, {"observations": {"seed": seed}, "output": {"dir": str(tmp_path)}})
    with options_scope(run):
        setup = Setup(run)
        assert setup.grid.nwet > 40_000                       # the embedded world, not a test grid
        start = {"alpha": 0.05, "beta": 0.5, "b": 0.9, "kappa_d": 1.0 / (0.5 * 365 * 86400)}
        setup.model.parameters.set(**start)
        out = run_inversion(setup, str(tmp_path), f"twin{seed}")
    res, post = out["result"], out["posterior"]
    assert res["iterations"] <= 30
    truth = run.truth
    for name, p in post["parameters"].items():
        z = (np.log(p["value"]) - np.log(truth[name])) / p["sigma_x"]
        assert abs(z) <= 2.0, (name, p["value"], truth[name], z)
    assert out["diagnostics"]["r2_dip"] > 0.9
    # and jointly: the truth inside the 95 % likelihood region of the 4 parameters
    cred = out["truth_credibility"]
    assert cred["parameters"] == 4 and cred["within_likelihood_region"], cred
    setup.destroy()
