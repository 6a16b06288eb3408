"""The scaling ladder of ``bcp-hpc bench scaling``: time and memory against unknowns, strong scaling."""
from __future__ import annotations

from .style import pyplot, save


def scaling_ladder(rows: list, out_dir: str, name: str = "scaling", formats=("png", "svg")) -> list:
    """``rows``: the benchmark's measurements (``status``, ``solver``, ``ranks``, ``rung``, ``unknowns``,
    ``factor_solve_s`` in s, ``peak_rss_bytes`` of the largest rank)."""
    plt = pyplot()
    ok = [r for r in rows if r["status"] == "ok"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5), layout="constrained")
    for solver in sorted({r["solver"] for r in ok}):
        for k in sorted({r["ranks"] for r in ok}):
            rs = sorted((r for r in ok if r["solver"] == solver and r["ranks"] == k), key=lambda r: r["unknowns"])
            if rs:
                x = [r["unknowns"] for r in rs]
                ax[0].loglog(x, [r["factor_solve_s"] for r in rs], "o-", label=f"{solver}, {k} rank(s)")
                ax[1].loglog(x, [r["peak_rss_bytes"] / 2**30 for r in rs], "o-", label=f"{solver}, {k} rank(s)")
        for rung in sorted({r["rung"] for r in ok}):
            rs = sorted((r for r in ok if r["solver"] == solver and r["rung"] == rung), key=lambda r: r["ranks"])
            if len(rs) > 1:
                ax[2].plot([r["ranks"] for r in rs], [rs[0]["factor_solve_s"] * rs[0]["ranks"] / r["factor_solve_s"]
                                                      for r in rs], "o-", label=f"{rung}, {solver}")
    ax[0].set(xlabel="unknowns", ylabel="factor + solve; joint: evaluation (s)", title="time")
    ax[1].set(xlabel="unknowns", ylabel="peak RSS, largest rank (GiB)", title="memory")
    ax[2].set(xlabel="ranks", ylabel="speedup vs fewest ranks", title="strong scaling")
    for a in ax:
        a.grid(True, which="both", alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    return save(fig, out_dir, name, formats, dpi=110, data={"measurements": ok})
