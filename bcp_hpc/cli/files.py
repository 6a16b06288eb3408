"""``bcp-hpc inspect`` and ``bcp-hpc export``."""
from __future__ import annotations

import os

from ..errors import InputError
from ..grid.ocim2 import read_grid
from ..io import matfile
from ..log import rprint
from ..operators.io import check_transport, read_hdf5, read_ocim2, write_hdf5, write_ocim2
from ..operators.sinking import martin_operator
from ..operators.transport import conservation_defects
from ..operators.world import load_world


def inspect(args):
    path = args.file
    if not os.path.exists(path):
        raise InputError("file does not exist", path=path)
    if path.endswith((".h5", ".hdf5")):
        grid, T = read_hdf5(path)
        defects = check_transport(T, grid, path, "transport", args.tol) if T is not None else None
    else:
        d = matfile.load(path)
        root = d["output"] if isinstance(d.get("output"), dict) else d
        if "TR" in root:
            grid, T, defects = read_ocim2(path, conservation_tol=args.tol)
        else:
            grid, T, defects = read_grid(path), None, None
    rprint(grid.summary())
    if grid.basins:
        rprint("basins: " + ", ".join(f"{k} {int(v.sum())}" for k, v in grid.basins.items()))
    if T is not None:
        rprint(f"transport: {T.shape[0]} x {T.shape[1]}, {T.nnz} nonzeros; conservation defects "
               f"row-sum {defects['row_sum_rel']:.2e}, 1^T V T {defects['volume_column_sum_rel']:.2e}")
    F = martin_operator(grid, 1 / (30 * 86400.0), 1.0)
    rprint(f"particle operator: 1^T V F defect {conservation_defects(F, grid.box_volume)['volume_column_sum_rel']:.2e}")
    return 0


def export(args):
    world = load_world(args.world, args.data or args.operator)
    if args.out.endswith((".h5", ".hdf5")):
        write_hdf5(args.out, world.grid, world.T, attrs={"source": world.source})
    elif args.out.endswith(".mat"):
        write_ocim2(args.out, world.grid, world.T, version=args.mat_version)
    else:
        raise InputError("output must end in .mat or .h5", path=args.out)
    rprint(f"wrote {args.out} ({world.grid.nwet} wet boxes, source {world.source})")
    return 0
