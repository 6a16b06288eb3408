"""Grids: wet mask, geometry, orderings and the distributed layout."""
from .grid import Grid, ocim2_vertical_grid, regular_latlon_grid  # noqa: F401
