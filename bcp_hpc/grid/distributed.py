"""PETSc objects on a :class:`~bcp_hpc.grid.layout.Layout`: vectors, matrices, gather/scatter.

Operators are SciPy sparse matrices in the natural ordering that hold (at least) a rank's
own rows: each rank builds or reads only those (:mod:`bcp_hpc.operators.rows`) and inserts
them (block rows of the multi-field system) into a distributed AIJ matrix with exact
preallocation.  Global PETSc rows are computed for the entries at hand, never stored for
every box and field.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..petsc_env import import_petsc4py
from .grid import Grid
from .layout import Layout

PETSc = import_petsc4py()


class LocalDiagonal:
    """A diagonal block term held only at this rank's boxes: ``values[j]`` is the entry of local box
    ``j`` (the order of :attr:`DistributedGrid.local_natural`).  Block operators take it beside SciPy
    matrices, so no rank holds an n-vector that is zero outside its own boxes."""

    __slots__ = ("values",)

    def __init__(self, values):
        self.values = np.asarray(values, dtype=float)

    def natural(self, loc, n: int) -> np.ndarray:
        """The whole diagonal as an n-vector in natural order (zero outside this rank's boxes ``loc``)."""
        out = np.zeros(n)
        out[loc] = self.values
        return out


class DistributedGrid:
    """A grid plus its layout on a communicator."""

    def __init__(self, grid: Grid, comm=None):
        self.grid = grid
        self.comm = comm if comm is not None else PETSc.COMM_WORLD
        self.layout = Layout(grid, self.comm.getSize(), self.comm.getRank())

    @property
    def rank(self):
        return self.comm.getRank()

    @property
    def size(self):
        return self.comm.getSize()

    @property
    def local_natural(self) -> np.ndarray:
        return self.layout.local_natural()

    @property
    def nlocal(self) -> int:
        return self.layout.nlocal

    def global_index(self, nfields: int) -> np.ndarray:
        """``(nfields, n)`` global PETSc rows of every natural box (tests and tools; the assembly computes
        only the rows it needs, :meth:`global_rows`)."""
        return self.layout.global_index(nfields)

    def global_rows(self, nfields: int, field: int, natural) -> np.ndarray:
        """Global PETSc row of field ``field`` (of ``nfields``) at natural boxes ``natural``."""
        bounds = self.layout.box_bounds
        p = self.layout.iperm[np.asarray(natural, dtype=np.int64)]
        owner = np.searchsorted(bounds, p, side="right") - 1
        start = bounds[owner]
        return nfields * start + field * (bounds[owner + 1] - start) + (p - start)

    def reduce_to_local(self, partial) -> np.ndarray:
        """The sum over the ranks of natural-order n-vectors ``partial``, at this rank's boxes (local order)."""
        from mpi4py import MPI
        send = np.ascontiguousarray(np.asarray(partial, dtype=float)[self.layout.perm])
        out = np.empty(self.nlocal)
        self.comm.tompi4py().Reduce_scatter(send, out, recvcounts=[int(c) for c in np.diff(self.layout.box_bounds)],
                                            op=MPI.SUM)
        return out

    # ------------------------------------------------------------------ vectors
    def create_vec(self, nfields: int = 1) -> "PETSc.Vec":
        v = PETSc.Vec().createMPI((self.nlocal * nfields, self.grid.nwet * nfields), comm=self.comm)
        v.setFromOptions()
        return v

    def vec_from_natural(self, fields, vec=None) -> "PETSc.Vec":
        """Build (or fill) a Vec from natural-order n-vectors, one per field."""
        fields = [np.asarray(f, dtype=float) for f in (fields if isinstance(fields, (list, tuple)) else [fields])]
        nf = len(fields)
        if vec is None:
            vec = self.create_vec(nf)
        loc = self.local_natural
        arr = vec.getArray()
        n = loc.size
        for f, x in enumerate(fields):
            arr[f * n:(f + 1) * n] = x[loc]
        return vec

    def local_fields(self, vec, nfields: int) -> np.ndarray:
        """View of the local part of a Vec as (nfields, nlocal)."""
        return vec.getArray(readonly=True).reshape(nfields, self.nlocal)

    def natural_from_vec(self, vec, nfields: int = 1, root: int | None = None):
        """Gather a Vec into natural-order arrays ``(nfields, n)`` on every rank (``root=None``) or on ``root`` only."""
        comm = self.comm.tompi4py()
        local = np.ascontiguousarray(vec.getArray(readonly=True)).reshape(nfields, self.nlocal)
        counts = np.diff(self.layout.box_bounds)
        out = np.empty((nfields, self.grid.nwet)) if (root is None or comm.rank == root) else None
        perm = self.layout.perm
        for f in range(nfields):
            buf = np.empty(self.grid.nwet) if out is not None else None
            if root is None:
                comm.Allgatherv(np.ascontiguousarray(local[f]), [buf, counts])
            else:
                comm.Gatherv(np.ascontiguousarray(local[f]), [buf, counts] if buf is not None else None, root=root)
            if out is not None:
                out[f, perm] = buf
        return out

    # ------------------------------------------------------------------ matrices
    def matrix_from_blocks(self, blocks, nfields: int, mat=None) -> "PETSc.Mat":
        """Distributed AIJ matrix of an ``nfields`` x ``nfields`` block operator.

        ``blocks`` maps ``(row_field, col_field)`` to a SciPy sparse matrix (n x n,
        natural ordering), a :class:`LocalDiagonal`, a 1-D n-array (a diagonal block; only this
        rank's entries are read) or a list of such terms (summed).  Explicit zeros are kept, so repeated
        assembly with new values has the same nonzero pattern.  Only this rank's
        rows are extracted and inserted.
        """
        loc = self.local_natural
        nloc = loc.size
        # global rows of this rank's boxes: field f of local box j is row nfields*start + f*nloc + j
        start = nfields * self.layout.owned_range()[0]
        rows_ptr = []
        for fi in range(nfields):
            parts = []
            for fj in range(nfields):
                terms = blocks.get((fi, fj))
                if terms is None:
                    continue
                for blk in (terms if isinstance(terms, (list, tuple)) else [terms]):
                    if isinstance(blk, LocalDiagonal):
                        parts.append((np.arange(nloc), start + fj * nloc + np.arange(nloc), blk.values))
                        continue
                    if isinstance(blk, np.ndarray) and blk.ndim == 1:
                        # diagonal block: only this rank's rows, explicit zeros kept (stable pattern)
                        parts.append((np.arange(nloc), start + fj * nloc + np.arange(nloc), blk[loc]))
                        continue
                    sub = sp.csr_matrix(blk)[loc, :].tocoo()
                    parts.append((sub.row, self.global_rows(nfields, fj, sub.col), sub.data))
            if parts:
                r = np.concatenate([p[0] for p in parts])
                c = np.concatenate([p[1] for p in parts])
                v = np.concatenate([p[2] for p in parts])
            else:
                r = c = np.zeros(0, np.int64)
                v = np.zeros(0)
            m = sp.csr_matrix((v, (r, c)), shape=(nloc, self.grid.nwet * nfields))
            m.sum_duplicates()
            m.sort_indices()
            rows_ptr.append(m)
        local = sp.vstack(rows_ptr, format="csr")
        local.sort_indices()
        N = self.grid.nwet * nfields
        if mat is None:
            mat = PETSc.Mat().createAIJ(((nloc * nfields, N), (nloc * nfields, N)), comm=self.comm)
            mat.setPreallocationCSR((local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType),
                                     local.data))
        else:
            # same nonzero pattern: update values in place so a factorization can reuse its analysis
            mat.zeroEntries()
            mat.setValuesCSR(local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data,
                             addv=PETSc.InsertMode.INSERT_VALUES)
        mat.assemble()
        return mat

    def matrix_from_scipy(self, A) -> "PETSc.Mat":
        """Single-field distributed matrix from an n x n SciPy sparse matrix (natural ordering)."""
        return self.matrix_from_blocks({(0, 0): A}, 1)

    def local_rows_to_petsc(self, local_csr) -> "PETSc.Mat":
        """Matrix from this rank's rows only (CSR over natural columns), e.g. streamed from a file."""
        coo = sp.coo_matrix(local_csr)
        m = sp.csr_matrix((coo.data, (coo.row, self.global_rows(1, 0, coo.col))), shape=(self.nlocal, self.grid.nwet))
        m.sum_duplicates()
        m.sort_indices()
        mat = PETSc.Mat().createAIJ(((self.nlocal, self.grid.nwet), (self.nlocal, self.grid.nwet)), comm=self.comm)
        mat.setPreallocationCSR((m.indptr.astype(PETSc.IntType), m.indices.astype(PETSc.IntType), m.data))
        mat.assemble()
        return mat
