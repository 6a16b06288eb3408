"""``bcp-hpc bench data``: parallel loading of a model-grid input file (OCIM2 size).

A synthetic input file (the package's own fields, 8 3-D fields) is written on the OCIM2
mask (or a generated 2 degree grid); then each strategy of :mod:`bcp_hpc.data.parallel`
loads every field onto the rank layout.  Baseline: every rank reads whole fields.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from ..data.climatology import ModelField
from ..data.inputs import write_inputs
from ..data.parallel import load_local
from ..data.synthetic import synthetic_inputs
from ..grid.layout import Layout
from ..log import rprint
from ..memory import peak_rss_bytes
from ..operators.world import OCIM2_MASK_FILE, default_shared_data_dir
from .common import write_json


def run(args):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    from ..data.grids import grid_from_spec
    d = args.data or default_shared_data_dir()
    spec = os.path.join(d, OCIM2_MASK_FILE) if d and not args.generated else "generated-2deg"
    grid = grid_from_spec(spec)
    layout = Layout(grid, comm.size, comm.rank)
    tmpdir = tempfile.mkdtemp(prefix="bcp-bench-data-") if comm.rank == 0 else None
    tmpdir = comm.bcast(tmpdir, root=0)
    path = os.path.join(tmpdir, "inputs.h5")
    names = [f"field{i}" for i in range(8)]
    if comm.rank == 0:
        fields, _ = synthetic_inputs(grid)
        base = fields[0]
        extra = [ModelField(n, base.values * (1 + 0.1 * i), base.n_obs, base.filled, base.units, "bench", "mmol m-3")
                 for i, n in enumerate(names)]
        write_inputs(path, grid, fields=extra)
    comm.Barrier()
    rprint(f"bench data: {grid.name}, {grid.nwet} wet boxes, {len(names)} fields, {comm.size} rank(s)")
    seconds = {}
    ref = None
    for strategy in ("whole", "scatter", "hyperslab"):
        comm.Barrier()
        t0 = time.perf_counter()
        vals = load_local(path, names, grid, layout, comm, strategy)
        dt = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        seconds[strategy] = dt
        if ref is None:
            ref = vals
        else:
            diff = max(float(np.max(np.abs(vals[n] - ref[n]), initial=0.0)) for n in names)
            diff = comm.allreduce(diff, op=MPI.MAX)
            if diff != 0.0:
                raise RuntimeError(f"strategy {strategy} differs from the baseline by {diff}")
        rprint(f"  {strategy:<10s} {dt:8.3f} s")
    best = min(("scatter", "hyperslab"), key=seconds.get)
    rss = comm.allreduce(peak_rss_bytes(), op=MPI.MAX)
    payload = {"benchmark": "data", "grid": grid.name, "ranks": comm.size, "unknowns": grid.nwet * len(names),
               "fields": len(names), "seconds": seconds, "best": best, "peak_rss_bytes": rss,
               "bytes_per_field": grid.nwet * 8,
               "speedup_vs_baseline": seconds["whole"] / seconds[best]}
    rprint(f"  best: {best}; speedup_vs_baseline (every rank reads whole fields) {payload['speedup_vs_baseline']:.2f}")
    if comm.rank == 0:
        os.remove(path)
        os.rmdir(tmpdir)
    write_json(args.json, payload)
    return 0
