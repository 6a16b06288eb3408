"""Figure S3: model NPP and the NPP of the POP route against sigma2, with the fitted
NPP = 1 / (a + b sigma2) (Pg C yr-1)."""
from __future__ import annotations

import numpy as np

from .style import pyplot, save


def npp_vs_sigma2(sigma2, npp, npp_pop, fit: dict | None, out_dir: str, name: str = "npp_sigma2",
                  formats=("png", "svg")) -> list:
    plt = pyplot()
    s = np.asarray(sigma2, float)
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    ax.plot(s, npp, "o", color="#1b7837", label="model NPP", zorder=3)
    ax.plot(s, npp_pop, "s", color="#762a83", label="NPP$_{POP}$ (1 - $\\sigma_1$ - $\\sigma_2$) NPP", zorder=3)
    if fit and fit.get("a") is not None:
        xs = np.linspace(0, max(s.max(), 0.5) * 1.02, 200)
        den = fit["a"] + fit["b"] * xs
        ok = den > 0
        ax.plot(xs[ok], 1 / den[ok], "-", color="#1b7837", alpha=0.7,
                label=f"1/({fit['a']:.4f} + ({fit['b']:.4f}) $\\sigma_2$), R$^2$ {fit.get('r2', float('nan')):.3f}")
    ax.set(xlabel="$\\sigma_2$ (fraction of uptake to labile DOP)", ylabel="Pg C yr$^{-1}$",
           title="NPP against $\\sigma_2$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out_dir, name, formats, data={"sigma2": s, "npp_pg_c_per_yr": npp,
                                                  "npp_pop_pg_c_per_yr": npp_pop, "fit": fit})
