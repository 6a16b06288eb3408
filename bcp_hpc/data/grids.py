"""Grids by name for the data layer (no circulation is built): embedded, tiny, generated-2deg,
ocim2-mask (a directory holding ``M3d91x180x24.mat``) or any OCIM2-layout ``.mat`` file."""
from __future__ import annotations

import os

from ..errors import InputError
from ..grid.embedded import embedded_grid
from ..grid.ocim2 import read_grid

NAMED = {
    "embedded": lambda: embedded_grid(),
    "tiny": lambda: embedded_grid(nlat=15, nlon=30, nz=8),
    "generated-2deg": lambda: embedded_grid(nlat=91, nlon=180, nz=24),
}


def grid_from_spec(spec: str, base_dir: str = "."):
    """A :class:`~bcp_hpc.grid.grid.Grid` from a name, a directory with the OCIM2 mask, or a ``.mat`` file."""
    if spec in NAMED:
        return NAMED[spec]()
    path = spec if os.path.isabs(spec) else os.path.join(base_dir, spec)
    if os.path.isdir(path):
        path = os.path.join(path, "M3d91x180x24.mat")
    if not os.path.exists(path):
        raise InputError(f"grid '{spec}' is neither a known name ({', '.join(NAMED)}) nor an existing "
                         "OCIM2 .mat file or directory", path=path)
    return read_grid(path)
