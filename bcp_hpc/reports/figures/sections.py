"""Zonal-mean sections per basin (Atlantic, Pacific, Indian): model, observation and residual of an
observed tracer; the ideal age of the circulation.  Volume-weighted means over each basin's columns at
each latitude and depth; the observation and residual over the observed boxes only."""
from __future__ import annotations

import numpy as np

from .style import colormap, edges, pyplot, robust_limits, save


def zonal_mean(field3d, volume3d, basin2d, code: int, where=None) -> np.ndarray:
    """(depth, lat) volume-weighted mean over the columns of basin ``code`` (NaN where none)."""
    f = np.asarray(field3d, float)
    v = np.where(np.isfinite(f) & np.isfinite(volume3d), volume3d, 0.0)
    v = v * (np.asarray(basin2d) == code)[None, :, :]
    if where is not None:
        v = v * where
    num = np.nansum(np.where(v > 0, f, 0.0) * v, axis=2)
    den = v.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _depth_edges(depth):
    e = edges(depth)
    e[0] = max(e[0], 0.0)
    return e


def tracer_sections(label: str, units: str, model3d, obs3d, volume3d, basin2d, basin_names: dict, lat, depth,
                    out_dir: str, name: str, formats=("png", "svg"), kind: str = "tracer") -> list:
    """Rows: basins; columns: model, observation, model - observation (``obs3d`` None: model only)."""
    plt = pyplot()
    codes = [c for c in sorted(basin_names) if np.any(np.asarray(basin2d) == c)]
    observed = None if obs3d is None else np.isfinite(obs3d)
    cols = ["model"] + (["observed", "model - observed"] if obs3d is not None else [])
    rows = {}
    for c in codes:
        rows[c] = [zonal_mean(model3d, volume3d, basin2d, c)]
        if obs3d is not None:
            rows[c].append(zonal_mean(obs3d, volume3d, basin2d, c))
            rows[c].append(zonal_mean(np.asarray(model3d) - np.asarray(obs3d), volume3d, basin2d, c, where=observed))
    fig, axes = plt.subplots(len(codes), len(cols), figsize=(4.3 * len(cols) + 0.6, 2.5 * len(codes) + 0.5),
                             squeeze=False, sharey=True, layout="constrained")
    lo, hi = robust_limits(*(r[k] for r in rows.values() for k in range(min(2, len(cols)))), lower=None, pct=99)
    res = [r[2] for r in rows.values()] if obs3d is not None else []
    rl = robust_limits(*(np.abs(x) for x in res), lower=0.0, pct=98)[1] if res else 1.0
    xe, ze = edges(lat), _depth_edges(depth)
    drawn = {}
    for i, c in enumerate(codes):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            resid = col.startswith("model -")
            cm = colormap("residual" if resid else kind)
            m = ax.pcolormesh(xe, ze, np.ma.masked_invalid(rows[c][j]), cmap=cm, shading="flat",
                              vmin=-rl if resid else lo, vmax=rl if resid else hi, rasterized=True)
            ax.set_facecolor("#b9b3a8")
            ax.set_ylim(ze[-1], 0)
            ax.set_title(f"{basin_names[c]}: {col}", fontsize=9)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel("depth (m)")
            if i == len(codes) - 1:
                ax.set_xlabel("latitude")
            if i == 0:
                fig.colorbar(m, ax=axes[:, j].tolist(), shrink=0.8, label=f"{label} ({units})", location="bottom")
            drawn[f"{basin_names[c]} {col}"] = {"finite_cells": int(np.isfinite(rows[c][j]).sum())}
    fig.suptitle(f"{label}: zonal means by basin", fontsize=11)
    return save(fig, out_dir, name, formats, data={"label": label, "units": units, "colour_limits": [lo, hi],
                                                    "residual_limit": rl, "panels": drawn})
