"""Fit of a model field to observations, weighted as the objective weights them (spec §5.2)."""
from __future__ import annotations

import numpy as np


def fit_statistics(grid, model_values, obs, weights=None) -> dict:
    """Volume-weighted R^2 and RMSE (units of the field) of model against observations where observed."""
    ok = np.isfinite(obs)
    w = grid.box_volume[ok] if weights is None else weights[ok]
    w = w / w.sum()
    y = obs[ok]
    c = model_values[ok]
    ybar = (w * y).sum()
    var = (w * (y - ybar) ** 2).sum()
    mse = (w * (c - y) ** 2).sum()
    return {"r2": float(1 - mse / var), "rmse": float(np.sqrt(mse)), "n_obs": int(ok.sum())}
