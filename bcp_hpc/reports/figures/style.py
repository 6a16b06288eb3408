"""How every figure looks: matplotlib's non-interactive backend, perceptually uniform colormaps
(cmocean's when installed, matplotlib's own otherwise), land from the model's own mask, and the files
a figure is saved as (PNG for the report, SVG for papers)."""
from __future__ import annotations

import os

import numpy as np

#: kind of quantity -> (cmocean name, matplotlib fallback)
COLORMAPS = {
    "productivity": ("algae", "viridis"),     # NPP, export, production (mg C m-2 d-1)
    "tracer": ("haline", "viridis"),          # concentrations
    "oxygen": ("oxy", "cividis"),
    "residual": ("balance", "RdBu_r"),        # model - observation, centred on 0
    "age": ("deep", "magma_r"),
    "density": ("tempo", "Blues"),            # histogram weights
    "correlation": ("curl", "PuOr_r"),
}
LAND = "#b9b3a8"


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); a clear error when matplotlib is absent."""
    try:
        import matplotlib
    except ImportError as exc:                # pragma: no cover - the set-up installs it
        from ...errors import InputError
        raise InputError("figures need matplotlib (Debian python3-matplotlib, or pip install matplotlib)") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def colormap(kind: str, bad: str = LAND):
    """The colormap of a kind of quantity; ``bad`` (NaN, masked) drawn as land unless told otherwise."""
    import matplotlib
    name, fallback = COLORMAPS[kind]
    try:
        import cmocean
        cmap = getattr(cmocean.cm, name)
    except (ImportError, AttributeError):
        cmap = matplotlib.colormaps[fallback]
    cmap = cmap.copy()
    cmap.set_bad(bad)
    return cmap


def edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges of monotonic cell centres (for pcolormesh)."""
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[:-1] + c[1:])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def robust_limits(*arrays, lower: float | None = 0.0, pct: float = 98.0):
    """Shared colour limits over ``arrays``: ``lower`` (None: the 2nd percentile) to the ``pct`` percentile,
    so that a few extreme columns do not wash out the panels a reader compares."""
    vals = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return 0.0, 1.0
    lo = float(np.percentile(vals, 100 - pct)) if lower is None else lower
    hi = float(np.percentile(vals, pct))
    if not hi > lo:
        hi = lo + (abs(lo) if lo else 1.0)
    return lo, hi


def map_panel(ax, lat, lon, field2d, cmap, vmin, vmax, title=""):
    """A lat-lon map (NaN = land, drawn in the land colour) with the given colour limits."""
    m = ax.pcolormesh(edges(lon), edges(lat), np.ma.masked_invalid(field2d), cmap=cmap, vmin=vmin, vmax=vmax,
                      shading="flat", rasterized=True)
    ax.set_facecolor(LAND)
    ax.set_xlim(edges(lon)[0], edges(lon)[-1])
    ax.set_ylim(max(edges(lat)[0], -90), min(edges(lat)[-1], 90))
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}°E")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:g}°N" if v > 0 else (f"{-v:g}°S" if v < 0 else "0°"))
    ax.set_aspect("auto")
    return m


def save(fig, out_dir: str, name: str, formats=("png", "svg"), dpi: int = 120, data: dict | None = None) -> list:
    """``out_dir/name.<fmt>`` for each format (written beside, then renamed: never half a figure), and
    ``name.json``: the values the figure draws (``data``), for checks and for replotting."""
    import json

    from ...io.atomic import atomic_path, write_text_atomic
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    if data is not None:
        # the image's size in pixels (no tight bounding box: the layout engine keeps everything inside)
        fig.set_dpi(dpi)
        data = {**data, "size_px": list(fig.canvas.get_width_height())}
        write_text_atomic(os.path.join(out_dir, f"{name}.json"), json.dumps(_plain(data), indent=1) + "\n")
    for fmt in formats:
        path = os.path.join(out_dir, f"{name}.{fmt}")
        with atomic_path(path, "." + fmt) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
        paths.append(path)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return paths


def _plain(v):
    """JSON-able: arrays to lists, NaN to None."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v
