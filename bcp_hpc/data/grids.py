"""Grids by name for the data layer (no circulation is built): the generated ones (embedded, tiny,
generated-2.5deg, generated-2deg), ocim2-mask (a directory holding ``M3d91x180x24.mat``) or any OCIM2-layout ``.mat`` file."""
from __future__ import annotations

import os

from ..errors import InputError
from ..grid.embedded import GENERATED_GRIDS, generated_grid
from ..grid.ocim2 import read_grid

NAMED = {name: (lambda name=name: generated_grid(name)) for name in GENERATED_GRIDS}


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
