"""Figure 4: Taylor diagram of the POC flux at 100 m against the sediment-trap stations: every inverse
run, the Henson (2011) estimate of each NPP product and each Earth-system model the user gave.

Each point is drawn from its Taylor statistics as the run saved them (standard deviations of model and
observations, correlation r, centred RMS difference), normalised by the observations' standard
deviation: radius s_m / s_o, angle arccos r; the reference (the stations) sits at (1, 0)."""
from __future__ import annotations

import numpy as np

from .style import pyplot, save

MARKERS = {"inverse model": ("o", "#1b7837"), "Henson (2011)": ("^", "#2166ac"), "CMIP6": ("s", "#b2182b")}


def taylor_diagram(points: list, out_dir: str, name: str = "taylor", title: str = "", formats=("png", "svg")):
    """``points``: dicts with ``label``, ``group`` (a key of :data:`MARKERS`), ``std_model``, ``std_obs``,
    ``r`` and ``crmsd`` (mg C m-2 d-1)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.2, 5.0), layout="constrained")
    drawn = []
    rmax = 1.6
    for p in points:
        if p.get("r") is None or not p.get("std_obs"):
            continue
        rho = p["std_model"] / p["std_obs"]
        theta = float(np.arccos(np.clip(p["r"], -1.0, 1.0)))
        drawn.append({**p, "normalised_std": rho, "angle_rad": theta,
                      "normalised_crmsd": p["crmsd"] / p["std_obs"]})
        rmax = max(rmax, rho * 1.15)
    negative = any(d["r"] < 0 for d in drawn)
    tmax = np.pi if negative else np.pi / 2
    t = np.linspace(0, tmax, 200)
    for rr in np.arange(0.5, rmax + 1e-9, 0.5):              # standard-deviation arcs
        ax.plot(rr * np.cos(t), rr * np.sin(t), color="0.85", lw=0.6)
    ax.plot(np.cos(t), np.sin(t), color="0.4", lw=0.9, ls="--")   # the observations' std
    for r in (-0.9, -0.6, -0.3, 0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99):      # correlation rays
        if r < 0 and not negative:
            continue
        a = np.arccos(r)
        ax.plot([0, rmax * np.cos(a)], [0, rmax * np.sin(a)], color="0.85", lw=0.6)
        ax.text(1.03 * rmax * np.cos(a), 1.03 * rmax * np.sin(a), f"{r:g}", fontsize=7, ha="center", va="center")
    for e in np.arange(0.25, rmax + 1.0, 0.25):             # centred-RMSD circles around the reference
        c = np.linspace(0, np.pi, 200)
        x, y = 1 + e * np.cos(c), e * np.sin(c)
        keep = (np.hypot(x, y) <= rmax) & (y >= 0)
        ax.plot(np.where(keep, x, np.nan), np.where(keep, y, np.nan), color="#9ecae1", lw=0.6, ls=":")
    ax.plot([1], [0], "k*", ms=12, clip_on=False, label="trap stations (reference)")
    seen, placed = set(), []
    for d in drawn:
        marker, colour = MARKERS.get(d["group"], ("D", "0.3"))
        x, y = d["normalised_std"] * np.cos(d["angle_rad"]), d["normalised_std"] * np.sin(d["angle_rad"])
        lab = d["group"] if d["group"] not in seen else None
        seen.add(d["group"])
        ax.plot([x], [y], marker, color=colour, ms=8, label=lab, clip_on=False)
        # numbers beside the markers, the labels in a key: clustered points stay readable
        near = sum(1 for px, py in placed if abs(px - x) < 0.05 * rmax and abs(py - y) < 0.05 * rmax)
        placed.append((x, y))
        d["number"] = len(placed)
        ax.annotate(str(d["number"]), (x, y), textcoords="offset points", xytext=(5 + 8 * near, 3), fontsize=7)
    ax.set_xlim(-rmax if negative else 0, rmax)
    ax.set_ylim(0, rmax)
    ax.set_aspect("equal")
    ax.set_xlabel("standard deviation / observed")
    ax.set_ylabel("standard deviation / observed")
    ax.set_title(title or "POC flux at 100 m against the trap stations", fontsize=10, pad=16)
    if drawn:
        ax.text(1.07, 0.02, "\n".join(f"{d['number']}  {d['label']}" for d in drawn), transform=ax.transAxes,
                fontsize=7, va="bottom", ha="left", family="monospace")
    ax.legend(fontsize=7, loc="upper right")
    for sp in ("top", "right"):
        ax.spines[sp].set_visible(False)
    return save(fig, out_dir, name, formats, data={"points": drawn})
