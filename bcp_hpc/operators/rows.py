"""A world's transport operator by rows: each rank builds or reads only the rows of its own boxes.

A *row-restricted* operator is an n x n SciPy CSR matrix in natural order whose rows outside a
rank's boxes are empty.  Everything downstream (distributed assembly, the model's block terms, the
solvers) reads only a rank's own rows, so such a matrix stands in for the whole one; sums over all
rows (column sums, conservation) are reductions over the ranks.  Its memory is the rank's nonzeros
plus one row pointer of n + 1 integers.

Sources (:class:`TransportSource`): the whole matrix in memory (:class:`MatrixTransport`), the
synthetic circulation built row by row (:class:`SyntheticTransport`), an OCIM2 v7.3 file
streamed by rows (:class:`StreamedTransport`), and an OCIM2 v5 file read once on rank 0 and sent
to every rank by rows (:class:`ScatteredTransport`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def expand_rows(local, rows_natural, n: int) -> sp.csr_matrix:
    """The row-restricted n x n matrix whose rows ``rows_natural`` (ascending) are those of ``local``."""
    local = sp.csr_matrix(local)
    rows_natural = np.asarray(rows_natural, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    lengths[rows_natural] = np.diff(local.indptr)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return sp.csr_matrix((local.data, local.indices, indptr), shape=(n, local.shape[1]))


def restrict_rows(A, rows_natural) -> sp.csr_matrix:
    """The row-restricted copy of ``A`` (n x n, natural order) keeping rows ``rows_natural``."""
    A = sp.csr_matrix(A)
    rows = np.sort(np.asarray(rows_natural, dtype=np.int64))
    return expand_rows(A[rows], rows, A.shape[0])


def local_rows(A, rows_natural) -> sp.csr_matrix:
    """Rows ``rows_natural`` of ``A`` in that order (len(rows) x n)."""
    return sp.csr_matrix(A)[np.asarray(rows_natural, dtype=np.int64)]


class TransportSource:
    """Where ``T`` (s^-1, natural order) comes from.  The last rows made are kept: the systems of one world
    (one per NPP product or sigma2) ask for the same rank's rows."""

    _cached = None                   # (rows, row-restricted T) of the last rows made

    def rows(self, rows_natural) -> sp.csr_matrix:
        """The row-restricted ``T`` with rows ``rows_natural``."""
        rows = np.sort(np.asarray(rows_natural, dtype=np.int64))
        if self._cached is None or not np.array_equal(self._cached[0], rows):
            self._cached = (rows, self._make_rows(rows))
        return self._cached[1]

    def _make_rows(self, rows) -> sp.csr_matrix:
        """The row-restricted ``T`` with rows ``rows`` (ascending natural indices)."""
        raise NotImplementedError

    def full(self) -> sp.csr_matrix:
        """The whole ``T`` (for writing files and for serial tools)."""
        raise NotImplementedError


class MatrixTransport(TransportSource):
    """A ``T`` already in memory (a file read whole, a test's matrix)."""

    def __init__(self, T):
        self.T = sp.csr_matrix(T)

    def _make_rows(self, rows):
        return restrict_rows(self.T, rows)

    def full(self):
        return self.T


class SyntheticTransport(TransportSource):
    """The synthetic circulation: its two edge potentials on the whole 3-D grid (a transient of two arrays
    of the grid's nlat x nlon x nz cells, land included, made again for each call); face fluxes,
    diffusivities and operator entries only at the faces of the rows asked for."""

    def __init__(self, grid, cfg=None):
        self.grid = grid
        self.cfg = cfg

    def _make_rows(self, rows):
        from .circulation import synthetic_rows
        return synthetic_rows(self.grid, self.cfg, rows=rows)

    def full(self):
        from .circulation import synthetic_rows
        return synthetic_rows(self.grid, self.cfg)


class StreamedTransport(TransportSource):
    """An OCIM2 v7.3 (HDF5) operator file: every rank streams its own rows from the file's CSC arrays
    (the whole operator is never in one rank's memory).  :meth:`check` validates it collectively."""

    def __init__(self, path: str, grid):
        self.path = path
        self.grid = grid

    def _make_rows(self, rows):
        from .io import read_transport_local_rows
        return expand_rows(read_transport_local_rows(self.path, self.grid, rows), rows, self.grid.nwet)

    def full(self):
        from .io import read_ocim2
        return read_ocim2(self.path, conservation_tol=np.inf)[1]

    def check(self, comm, tol: float) -> dict:
        """Collective over ``comm`` (mpi4py): each rank reads the rows it will own, then finiteness
        and the conservation defects of :func:`~.transport.conservation_defects` from reductions (one
        n-vector of volume-weighted column sums).  Every rank raises the same :class:`InputError`."""
        from mpi4py import MPI
        from ..errors import InputError
        from ..grid.layout import Layout
        grid = self.grid
        rows = Layout(grid, comm.size, comm.rank).local_natural()
        problem = ""
        try:
            T = self.rows(rows)
        except InputError as exc:        # found by some ranks only (their rows): every rank raises it
            problem, T = str(exc), None
        problems = [p for p in comm.allgather(problem) if p]
        if problems:
            raise InputError(problems[0])
        vol = grid.box_volume
        col = np.ascontiguousarray(T.T @ vol, dtype=float)
        comm.Allreduce(MPI.IN_PLACE, col, op=MPI.SUM)
        local_diag = float(np.abs(T.diagonal()[rows]).max(initial=0.0))
        local_row = float(np.abs(np.asarray(T.sum(axis=1)).ravel()[rows]).max(initial=0.0))
        scale = comm.allreduce(local_diag, op=MPI.MAX) or 1.0
        defects = {"row_sum_rel": comm.allreduce(local_row, op=MPI.MAX) / scale,
                   "volume_column_sum_rel": float(np.abs(col / vol).max()) / scale}
        if defects["volume_column_sum_rel"] > tol:
            raise InputError(f"transport matrix does not conserve mass: max |1^T V T| / max|diag T| = "
                             f"{defects['volume_column_sum_rel']:.3e} > tolerance {tol:.1e}", path=self.path,
                             variable="output.TR")
        return defects


class ScatteredTransport(TransportSource):
    """An OCIM2 v5 file on several ranks.  The v5 format has no partial read, so rank 0 reads it whole,
    once, and sends every rank the rows of the boxes it owns (:meth:`scatter`); afterwards each rank,
    rank 0 included, holds its own rows only."""

    def __init__(self, path: str, held_rows, held):
        self.path = path
        self.held_rows = np.asarray(held_rows, dtype=np.int64)   # ascending natural rows this rank holds
        self.held = held                                         # the row-restricted T of those rows
        self._cached = (self.held_rows, held)

    @classmethod
    def scatter(cls, path: str, T, grid, comm) -> "ScatteredTransport":
        """Collective over ``comm`` (mpi4py).  ``T``: the whole operator on rank 0 (ignored elsewhere); each
        rank receives the rows of its boxes in the package's layout for ``comm.size`` ranks."""
        from ..grid.layout import Layout
        layout = Layout(grid, comm.size, comm.rank)
        if comm.rank == 0:
            T = sp.csr_matrix(T)
            for r in range(comm.size - 1, -1, -1):
                part = T[np.sort(layout.local_natural(r))]
                if r == 0:
                    mine = part
                    continue
                arrays = (part.indptr, part.indices, part.data)
                comm.send((part.shape, [(a.size, a.dtype.str) for a in arrays]), dest=r, tag=11)
                for a in arrays:          # raw buffers, not a pickle: no second copy on either side
                    comm.Send(np.ascontiguousarray(a), dest=r, tag=12)
        else:
            shape, specs = comm.recv(source=0, tag=11)
            arrays = [np.empty(size, dtype=np.dtype(dt)) for size, dt in specs]
            for a in arrays:
                comm.Recv(a, source=0, tag=12)
            mine = sp.csr_matrix(tuple(arrays[::-1]), shape=shape)
        rows = np.sort(layout.local_natural(comm.rank))
        return cls(path, rows, expand_rows(mine, rows, grid.nwet))

    def _make_rows(self, rows):
        if not np.isin(rows, self.held_rows).all():
            raise ValueError(f"rows of {self.path} that were not sent to this rank: the operator was scattered "
                             "for another rank layout")
        return restrict_rows(self.held, rows)

    def full(self):
        """The whole ``T``, read again from the file (for writing files and serial tools)."""
        from .io import read_ocim2
        return read_ocim2(self.path, conservation_tol=np.inf)[1]
