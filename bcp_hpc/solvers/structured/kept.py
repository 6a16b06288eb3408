"""Which water columns of a transported eliminated tracer stay in the Schur complement.

A fast-decaying dissolved pool (labile DOP) is eliminated with the column-local part of its
block; where a box exchanges much with other columns (narrow boxes next to the poles on a
lat-lon grid, where labile DOP's horizontal exchange reaches 65 % of its 12-hour decay) that
approximation is poor and costs the outer GMRES two to three times its iterations.  Those
columns are kept exactly in S instead.  The choice is made once, from the first Jacobian, so S
keeps one nonzero pattern across refactorizations.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from ...grid.distributed import LocalDiagonal

log = logging.getLogger(__name__)

#: keep a column when some box exchanges more than this fraction of its diagonal with other
#: columns (``-<prefix>keep_ratio``; figures in docs/benchmarks.md)
KEEP_RATIO = 0.05


def global_block(terms: dict, e: int, n: int, loc: np.ndarray) -> sp.csr_matrix:
    """``J_ee`` as one SciPy matrix in natural order, this rank's rows only (its terms hold no others;
    ``loc``: the natural index of this rank's boxes): sums over all rows are reductions over the ranks."""
    blk = terms[(e, e)]
    diag = sum((t.natural(loc, n) for t in blk if isinstance(t, LocalDiagonal)), np.zeros(n))
    return sp.csr_matrix(sum((sp.csr_matrix(t) for t in blk if not isinstance(t, LocalDiagonal)), sp.diags(diag)))


def choose_kept_columns(system, terms: dict, eliminated: list, keep_ratio: float) -> dict:
    """``{e: global natural-order mask}`` of the boxes of each transported eliminated tracer ``e`` kept
    in S (tracers with no poor column are absent).  Made once per solver from two n-vectors summed
    over the ranks (the exchange out of each box and the diagonal)."""
    from mpi4py import MPI
    g = system.grid
    n = g.nwet
    column = g.box_column
    kept = {}
    if keep_ratio < 0:
        return kept
    comm = system.dgrid.comm.tompi4py()
    for e in eliminated:
        if system.model.tracers[e].transport == "sinking":
            continue
        M = global_block(terms, e, n, system.loc).tocoo()
        off = column[M.row] != column[M.col]
        exchange = np.bincount(M.col[off], weights=np.abs(M.data[off]), minlength=n).astype(float)
        comm.Allreduce(MPI.IN_PLACE, exchange, op=MPI.SUM)
        diag = np.ascontiguousarray(sp.csr_matrix(M).diagonal(), dtype=float)
        comm.Allreduce(MPI.IN_PLACE, diag, op=MPI.SUM)
        diag = np.abs(diag)
        poor = exchange > keep_ratio * np.where(diag > 0, diag, np.inf)
        if not poor.any():
            continue
        kept[e] = np.isin(column, np.unique(column[poor]))
        log.info("structured: %s kept in the Schur complement in %d water columns (%d boxes): "
                 "horizontal exchange above %.2g of the diagonal", system.model.tracers[e].name,
                 np.unique(column[poor]).size, int(kept[e].sum()), keep_ratio)
    return kept
