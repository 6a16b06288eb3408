"""Ocean basins of a grid's columns (for the circulation's overturning cells and the basin sections of
the reports)."""
from __future__ import annotations

import numpy as np

#: basin code -> name (0: none, e.g. the Southern Ocean south of the basins' masks, or land)
BASIN_NAMES = {1: "Atlantic", 2: "Pacific", 3: "Indian"}


def column_basins(grid) -> np.ndarray:
    """Basin code per column (nlat, nlon): 0 none/closed, 1 Atlantic, 2 Pacific, 3 Indian.

    From the grid's ``MSKS`` when present; otherwise by longitude sectors.
    """
    nlat, nlon, _ = grid.shape
    code = np.zeros((nlat, nlon), dtype=np.int64)
    surf = grid.mask[:, :, 0]
    if grid.basins:
        for name, c in (("ATL", 1), ("PAC", 2), ("IND", 3)):
            if name in grid.basins:
                code[np.asarray(grid.basins[name])[:, :, 0].astype(bool)] = c
        return code
    lon = grid.lon[None, :] % 360.0
    lat = grid.lat[:, None] * np.ones((1, nlon))
    lonb = lon * np.ones((nlat, 1))
    atl = (lonb >= 290) | (lonb < 20)
    ind = (lonb >= 20) & (lonb < 147) & (lat < 30)
    code[:] = 2
    code[atl] = 1
    code[ind & ~atl] = 3
    code[~surf] = 0
    return code
