"""Maps (mg C m-2 d-1): model NPP for each sigma2 (the paper's Figure 1), and per NPP product the
satellite NPP and TOC export (Figure 2), the DOC_l and DOC_s export and labile production (Figure 3).
Panels a reader compares share one colour scale."""
from __future__ import annotations

import numpy as np

from .style import colormap, map_panel, pyplot, robust_limits, save

UNITS = "mg C m$^{-2}$ d$^{-1}$"


def map_grid(panels: list, lat, lon, out_dir: str, name: str, ncols: int = 2, shared: str = "all",
             title: str = "", formats=("png", "svg")) -> list:
    """``panels``: list of (title, (nlat, nlon) map).  ``shared``: "all" (one colour scale for every panel)
    or "column" (one per column: the same quantity of several products)."""
    plt = pyplot()
    n = len(panels)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 0.8, 2.5 * nrows + 0.9), squeeze=False,
                             layout="constrained")
    cmap = colormap("productivity")
    groups = [list(range(n))] if shared == "all" else [list(range(c, n, ncols)) for c in range(ncols)]
    limits = {}
    for g in groups:
        lo, hi = robust_limits(*(panels[i][1] for i in g))
        for i in g:
            limits[i] = (lo, hi)
    meshes = {}
    for i, (t, field) in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        meshes[i] = map_panel(ax, lat, lon, field, cmap, *limits[i], title=t)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    if shared == "all":
        fig.colorbar(meshes[0], ax=axes.ravel().tolist(), shrink=0.8, label=UNITS, extend="max")
    else:
        for c in range(ncols):
            col = [axes[r][c] for r in range(nrows) if r * ncols + c < n]
            fig.colorbar(meshes[c], ax=col, shrink=0.8, label=UNITS, extend="max", location="bottom")
    if title:
        fig.suptitle(title, fontsize=11)
    data = {"units": "mg C m-2 d-1", "panels": [{"title": t, "colour_limits": limits[i],
                                                  "column_mean": float(np.nanmean(f)) if np.isfinite(f).any() else None}
                                                 for i, (t, f) in enumerate(panels)]}
    return save(fig, out_dir, name, formats, data=data)


def npp_maps(maps: np.ndarray, sigma2, lat, lon, out_dir: str, name: str = "npp_maps", formats=("png", "svg")):
    """Figure 1: model NPP (run, lat, lon) for each sigma2, one colour scale."""
    panels = [(f"$\\sigma_2$ = {s:g}", maps[k]) for k, s in enumerate(sigma2)]
    return map_grid(panels, lat, lon, out_dir, name, ncols=2 if len(panels) > 1 else 1,
                    title="Model NPP for each $\\sigma_2$", formats=formats)


def product_maps(per_product: dict, quantities: list, lat, lon, out_dir: str, name: str, title: str,
                 formats=("png", "svg")):
    """One row per product, one column per quantity (``quantities``: list of (key, label)); each column
    has its own colour scale, shared by the products.  ``per_product``: product -> {key: map}."""
    panels = []
    for prod, maps in per_product.items():
        for key, label in quantities:
            panels.append((f"{prod.upper()}: {label}", maps.get(key, np.full((len(lat), len(lon)), np.nan))))
    return map_grid(panels, lat, lon, out_dir, name, ncols=len(quantities), shared="column", title=title,
                    formats=formats)
