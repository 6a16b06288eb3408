"""The posterior of an inversion: each parameter's value with its 1-sigma interval (relative to the
truth in twin experiments, else to the value), the correlation matrix of the transformed parameters,
and the eigen-spectrum of the Hessian scaled to unit diagonal."""
from __future__ import annotations

import numpy as np

from .style import colormap, pyplot, save


def posterior_figure(parameters: dict, correlation, names: list, eigenvalues: list, truth: dict | None,
                     out_dir: str, name: str = "posterior", title: str = "", formats=("png", "svg")) -> list:
    """``parameters``: name -> the result's entry (``value``, ``lower_1sigma``, ``upper_1sigma``, ``units``,
    ``sigma`` None when unconstrained, ``at_bound``)."""
    plt = pyplot()
    n = len(names)
    fig, ax = plt.subplots(1, 3, figsize=(15, max(3.8, 0.28 * n + 1.6)),
                           gridspec_kw={"width_ratios": [1.25, 1.0, 0.8]}, layout="constrained")
    a = ax[0]
    drawn = []
    for k, nm in enumerate(names):
        p = parameters[nm]
        ref = (truth or {}).get(nm) or p["value"]
        y = n - 1 - k
        rec = {"name": nm, "value": p["value"], "reference": ref, "lower_1sigma": p.get("lower_1sigma"),
               "upper_1sigma": p.get("upper_1sigma")}
        drawn.append(rec)
        if not ref or not np.isfinite(ref) or ref <= 0 or p["value"] <= 0:
            a.text(1.0, y, "n/a", fontsize=7, va="center")
            continue
        colour = "#b2182b" if p.get("at_bound") else "#2166ac"
        if p.get("sigma") is None:
            a.plot([p["value"] / ref], [y], "x", color="0.4")
            a.text(p["value"] / ref, y + 0.25, "unconstrained", fontsize=6, color="0.4")
        else:
            lo, hi = p["lower_1sigma"] / ref, p["upper_1sigma"] / ref
            a.errorbar([p["value"] / ref], [y], xerr=[[p["value"] / ref - lo], [hi - p["value"] / ref]], fmt="o",
                       color=colour, ms=4, capsize=2)
    a.axvline(1.0, color="k", lw=0.8, ls="--")
    a.set_xscale("log")
    a.set_yticks(range(n))
    a.set_yticklabels([f"{nm} ({parameters[nm]['units']})" for nm in reversed(names)], fontsize=7)
    a.set_xlabel("value / truth" if truth else "value and 1$\\sigma$ interval / value")
    a.set_title("parameters $\\pm 1\\sigma$" + (" (truth at 1)" if truth else ""), fontsize=9)
    a.grid(alpha=0.3, axis="x")
    c = np.array([[np.nan if v is None else v for v in row] for row in correlation], dtype=float) \
        if correlation is not None else np.full((n, n), np.nan)
    m = ax[1].imshow(np.ma.masked_invalid(c), cmap=colormap("correlation"), vmin=-1, vmax=1)
    ax[1].set_xticks(range(n))
    ax[1].set_xticklabels(names, rotation=90, fontsize=6)
    ax[1].set_yticks(range(n))
    ax[1].set_yticklabels(names, fontsize=6)
    ax[1].set_title("posterior correlation (transformed parameters)", fontsize=9)
    fig.colorbar(m, ax=ax[1], shrink=0.8)
    ev = np.asarray(eigenvalues, float)
    ax[2].semilogy(np.arange(1, ev.size + 1), np.where(ev > 0, ev, np.nan), "o-", color="#542788")
    ax[2].set(xlabel="index", ylabel="eigenvalue", title="Hessian eigen-spectrum (unit diagonal)")
    ax[2].title.set_fontsize(9)
    ax[2].grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, out_dir, name, formats, data={"parameters": drawn, "correlation": c, "eigenvalues": ev})
