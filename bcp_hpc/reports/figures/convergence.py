"""The optimiser's convergence: objective, gradient norm and trust radius per iteration, from the
inversions' JSON-lines logs (one line per run)."""
from __future__ import annotations

import numpy as np

from .style import pyplot, save


def convergence(logs: dict, out_dir: str, name: str = "convergence", formats=("png", "svg")) -> list:
    """``logs``: run label -> list of iteration records (``iteration``, ``objective``, ``gradient_norm``,
    ``trust_radius``)."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    drawn = {}
    for label, recs in logs.items():
        recs = [r for r in recs if "iteration" in r]
        if not recs:
            continue
        it = np.array([r["iteration"] for r in recs])
        series = {k: np.array([r.get(k, np.nan) if r.get(k) is not None else np.nan for r in recs], float)
                  for k in ("objective", "gradient_norm", "trust_radius")}
        drawn[label] = {"iteration": it, **series}
        for a, k in zip(ax, series):
            y = series[k]
            a.semilogy(it, np.where(y > 0, y, np.nan), "o-", ms=3, label=label or "run")
    for a, t in zip(ax, ("objective", "gradient norm", "trust radius")):
        a.set(xlabel="iteration", title=t)
        a.grid(alpha=0.3, which="both")
    if 1 < len(drawn) <= 12:
        ax[0].legend(fontsize=7)
    return save(fig, out_dir, name, formats, data=drawn)
