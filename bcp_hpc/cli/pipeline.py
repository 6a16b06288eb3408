"""``bcp-hpc run``: the main job on a world."""
from __future__ import annotations

import json
import os

from ..diagnostics.age import age_summary, ideal_age
from ..grid.distributed import DistributedGrid
from ..io.atomic import write_text_atomic
from ..log import rprint
from ..operators.transport import conservation_defects
from ..operators.world import load_world
from ..petsc_env import import_petsc4py

PETSc = import_petsc4py()


def run(args):
    comm = PETSc.COMM_WORLD
    world = load_world(args.world, args.data or args.operator)
    grid = world.grid
    rprint(f"world: {world.source}; {grid.summary()}")
    dgrid = DistributedGrid(grid, comm)
    rprint(f"layout: {dgrid.layout.describe()}")
    d = conservation_defects(world.T, grid.box_volume)
    rprint(f"transport conservation: row-sum {d['row_sum_rel']:.2e}, 1^T V T {d['volume_column_sum_rel']:.2e}")
    Tp = dgrid.matrix_from_scipy(world.T)
    age = ideal_age(dgrid, Tp)
    Tp.destroy()
    summ = age_summary(grid, age)
    rprint("ideal age (years): " + ", ".join(f"{k} {v:.0f}" for k, v in summ.items()))
    result = {"world": world.source, "nwet": grid.nwet, "ranks": comm.getSize(), "conservation": d, "ideal_age": summ}
    result.update(_run_models(world, dgrid, args))
    if comm.getRank() == 0:
        os.makedirs(args.out, exist_ok=True)
        write_text_atomic(os.path.join(args.out, "summary.json"), json.dumps(result, indent=2) + "\n")
        rprint(f"results in {args.out}/summary.json")
    return 0


def _run_models(world, dgrid, args) -> dict:
    """Model stages of the main job (the P model and its inversion once available)."""
    try:
        from . import pmodel_job
    except ImportError:
        return {}
    return pmodel_job.run(world, dgrid, args)
