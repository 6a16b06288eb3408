"""Parallel loading of model-grid input files onto the rank layout.

Two strategies, both returning each rank's values in its local (PETSc) box order:

* ``hyperslab`` (default): every rank opens the file read-only and reads only the
  latitude-longitude bounding box of its own columns (the Hilbert-ordered layout gives
  each rank a compact patch, so the box holds little beyond its own data);
* ``scatter``: rank 0 reads the whole field and scatters the pieces (MPI Scatterv).

``bcp-hpc bench data`` times both against every rank reading the whole field (the
naive baseline); README "Data layer" records the figures.  Compressed datasets are
chunked, so a hyperslab read decompresses only the chunks it touches.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .inputs import InputsFile


def local_box_range(grid, local_natural):
    """Bounding (ilat0, ilat1, ilon0, ilon1) of the boxes ``local_natural`` (end exclusive)."""
    if local_natural.size == 0:
        return 0, 0, 0, 0
    il = grid.box_ilat[local_natural]
    jl = grid.box_ilon[local_natural]
    return int(il.min()), int(il.max()) + 1, int(jl.min()), int(jl.max()) + 1


def read_local_hyperslab(path: str, name: str, grid, local_natural) -> np.ndarray:
    """This rank's values of 3-D field ``name`` (local order), reading only its bounding box."""
    f = InputsFile(path)
    try:
        f.check_grid(grid)
        if name not in f.h:
            raise InputError("not in the input file", path=path, variable=name)
        i0, i1, j0, j1 = local_box_range(grid, local_natural)
        slab = f.h[name][i0:i1, j0:j1, :]
    finally:
        f.close()
    return slab[grid.box_ilat[local_natural] - i0, grid.box_ilon[local_natural] - j0, grid.box_k[local_natural]]


def read_root_scatter(path: str, name: str, grid, layout, comm) -> np.ndarray:
    """Rank 0 reads field ``name`` whole and scatters the local parts (``comm``: mpi4py communicator)."""
    send = None
    err = None
    if comm.rank == 0:
        try:
            with InputsFile(path) as f:
                full = f.field(name, grid)
            send = np.ascontiguousarray(full[layout.perm])
        except InputError as exc:
            err = exc
    err = comm.bcast(err, root=0)
    if err is not None:
        raise err
    counts = np.diff(layout.box_bounds)
    out = np.empty(int(counts[comm.rank]))
    comm.Scatterv([send, counts] if comm.rank == 0 else None, out, root=0)
    return out


def read_whole_every_rank(path: str, name: str, grid, local_natural) -> np.ndarray:
    """The naive baseline: every rank reads the whole field and keeps its part."""
    with InputsFile(path) as f:
        return f.field(name, grid)[local_natural]


def load_local(path: str, names, grid, layout, comm, strategy: str = "hyperslab") -> dict:
    """``{name: local values}`` for every name, by ``strategy`` (hyperslab | scatter | whole)."""
    loc = layout.local_natural(comm.rank)
    out = {}
    for n in names:
        if strategy == "hyperslab":
            out[n] = read_local_hyperslab(path, n, grid, loc)
        elif strategy == "scatter":
            out[n] = read_root_scatter(path, n, grid, layout, comm)
        elif strategy == "whole":
            out[n] = read_whole_every_rank(path, n, grid, loc)
        else:
            raise ValueError(f"unknown strategy {strategy}")
    return out
