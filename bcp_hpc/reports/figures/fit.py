"""Figures S2/S4: observed against modelled tracers as volume-weighted 2-D histograms, with the R^2
the run computed."""
from __future__ import annotations

import numpy as np

from .style import colormap, pyplot, save


def obs_vs_model(panels: list, out_dir: str, name: str = "obs_vs_model", title: str = "",
                 formats=("png", "svg")) -> list:
    """``panels``: list of dicts with ``label``, ``model`` and ``obs`` (any shape, NaN = unobserved),
    ``volume`` (m3, same shape), ``units`` and ``r2`` (the run's own statistic, drawn as given)."""
    plt = pyplot()
    import matplotlib.colors as mcolors
    n = len(panels)
    ncols = min(n, 4)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.5 * nrows), squeeze=False, layout="constrained")
    cmap = colormap("density", bad="white")
    drawn = []
    for i, p in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        m, o, v = (np.asarray(p[k], float).ravel() for k in ("model", "obs", "volume"))
        ok = np.isfinite(m) & np.isfinite(o) & np.isfinite(v)
        m, o, v = m[ok], o[ok], v[ok]
        drawn.append({"label": p["label"], "title": p.get("title", p["label"]), "r2": p.get("r2"),
                      "observed_boxes": int(m.size)})
        if m.size == 0:
            ax.text(0.5, 0.5, "no observed boxes", ha="center", va="center", transform=ax.transAxes)
            continue
        lo = float(min(np.percentile(o, 0.5), np.percentile(m, 0.5)))
        hi = float(max(np.percentile(o, 99.5), np.percentile(m, 99.5)))
        pad = 0.03 * (hi - lo or 1.0)
        bins = np.linspace(lo - pad, hi + pad, 61)
        H, xe, ye = np.histogram2d(o, m, bins=bins, weights=v / v.sum())
        H = np.ma.masked_less_equal(H.T, 0)
        mesh = ax.pcolormesh(xe, ye, H, cmap=cmap, norm=mcolors.LogNorm(vmin=max(H.min(), H.max() * 1e-4),
                                                                         vmax=H.max()), rasterized=True)
        ax.plot(bins, bins, "k--", lw=0.8)
        r2 = p.get("r2")
        ax.text(0.04, 0.94, f"R$^2$ = {r2:.4f}" if r2 is not None else "", transform=ax.transAxes, va="top",
                fontsize=9)
        ax.set(xlabel=f"observed {p['label']} ({p['units']})", ylabel=f"model {p['label']} ({p['units']})",
               xlim=(bins[0], bins[-1]), ylim=(bins[0], bins[-1]))
        ax.set_aspect("equal")
        ax.set_title(p.get("title", p["label"]), fontsize=9)
        fig.colorbar(mesh, ax=ax, shrink=0.8, label="volume fraction")
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, out_dir, name, formats, data={"panels": drawn})
