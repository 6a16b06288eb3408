"""Synthetic model-grid inputs for any grid (what the embedded world ships): three NPP "products",
phosphate and temperature climatologies, written in the same input-file format as real data."""
from __future__ import annotations

import numpy as np

from ..grid.embedded import synthetic_npp, synthetic_phosphate, synthetic_temperature
from .climatology import ModelField


def synthetic_inputs(grid):
    """``(fields, npp)`` for :func:`~bcp_hpc.data.inputs.write_inputs`."""
    zeros = np.zeros(grid.shape)
    no = np.zeros(grid.shape, bool)
    fields = [
        ModelField("po4", grid.to3d(synthetic_phosphate(grid)), np.where(grid.mask, 1.0, 0.0), no, "mmol m-3",
                   "bcp_hpc.grid.embedded.synthetic_phosphate", "mmol m-3"),
        ModelField("temperature", grid.to3d(synthetic_temperature(grid)), zeros + grid.mask, no, "degC",
                   "bcp_hpc.grid.embedded.synthetic_temperature", "degC"),
    ]
    surf = grid.mask[:, :, 0]
    npp = {p: {"npp": synthetic_npp(grid, p), "filled": np.zeros(surf.shape, bool), "years": [0],
               "files": [], "coverage": surf.astype(float)} for p in ("vgpm", "cbpm", "cafe")}
    return fields, npp
