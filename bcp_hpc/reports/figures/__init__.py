"""The figures of a run, each drawn from the arrays the run saved (never recomputed another way).

Every function takes plain arrays and dictionaries, writes ``NAME.png`` and ``NAME.svg`` and
``NAME.json`` (the values it drew) into a folder and returns the image paths; :mod:`.catalog` knows
which figures a run folder has the data for.  matplotlib's non-interactive backend is used, so the
figures need no display."""
from .convergence import convergence
from .fit import obs_vs_model
from .maps import map_grid, npp_maps, product_maps
from .posterior import posterior_figure
from .scaling import scaling_ladder
from .sections import tracer_sections, zonal_mean
from .sweep import npp_vs_sigma2
from .taylor import taylor_diagram

__all__ = ["convergence", "obs_vs_model", "map_grid", "npp_maps", "product_maps", "posterior_figure",
           "scaling_ladder", "tracer_sections", "zonal_mean", "npp_vs_sigma2", "taylor_diagram"]
