"""Twin-experiment observations: the model's own state at known parameters, sampled and perturbed."""
from __future__ import annotations

import numpy as np

from ..errors import InputError


def synthetic_observations(truth_field, volume, noise: float, coverage: float, seed: int,
                           noise_model: str = "likelihood"):
    """The true field on a random ``coverage`` fraction of boxes plus Gaussian noise; returns
    (observations with NaN where unobserved, noise std per box), in the field's units.

    ``noise_model = "likelihood"`` (default) draws the noise the objective's error model assumes:
    the volume weights ``w_i = V_i / sum V`` of spec §5.2 are precisions, so box i gets variance
    ``noise^2 * Vbar / V_i`` (``Vbar`` the mean observed volume; average precision ``1/noise^2``).
    Then the Laplace posterior of spec §5.6 (``2f/N_obs`` times the inverse Hessian) is the right
    yardstick for the recovered parameters.  ``"iid"`` uses one std ``noise`` for every box: the
    volume-weighted misfit then has fewer effective observations than ``N_obs`` (Kish factor
    ``N sum w_i^2``) and the §5.6 error bars are optimistic by its square root."""
    if noise_model not in ("likelihood", "iid"):
        raise InputError(f"[observations] noise_model must be 'likelihood' or 'iid', got {noise_model!r}")
    if not 0.0 < coverage <= 1.0:
        raise InputError(f"[observations] coverage must be in (0, 1], got {coverage}")
    rng = np.random.default_rng(seed)
    observed = rng.random(truth_field.size) < coverage
    std = np.full(truth_field.size, noise)
    if noise_model == "likelihood":
        std = noise * np.sqrt(volume[observed].mean() / volume)
    obs = truth_field + std * rng.standard_normal(truth_field.size)
    obs[~observed] = np.nan
    return obs, std

