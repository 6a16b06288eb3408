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

    def vec_from_root(self, fields, nfields: int, root: int = 0) -> "PETSc.Vec":
        """A Vec from natural-order n-vectors ``fields`` (``nfields`` of them) held on rank ``root`` only
        (None elsewhere): each rank receives its own boxes (the inverse of ``natural_from_vec(root=)``)."""
        vec = self.create_vec(nfields)
        arr = vec.getArray()
        n = self.nlocal
        for f in range(nfields):
            arr[f * n:(f + 1) * n] = self.local_from_root(fields[f] if self.comm.getRank() == root else None, root)
        return vec

    def local_from_root(self, values, root: int = 0) -> np.ndarray:
        """This rank's boxes (local order) of the natural-order float n-vector ``values`` held on rank
        ``root`` only (None elsewhere)."""
        comm = self.comm.tompi4py()
        counts = np.diff(self.layout.box_bounds)
        send = np.ascontiguousarray(np.asarray(values, dtype=float)[self.layout.perm]) if comm.rank == root else None
        out = np.empty(self.nlocal)
        comm.Scatterv([send, counts] if comm.rank == root else None, out, root=root)
        return out

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
        assembly with new values has the same nonzero pattern.  Only this rank's rows are extracted
        and inserted.  To assemble often with terms of unchanged patterns keep a
        :meth:`block_assembly` and call its :meth:`BlockAssembly.matrix`.
        """
        return self.block_assembly(blocks, nfields).matrix(blocks, mat)

    def block_assembly(self, blocks, nfields: int) -> "BlockAssembly":
        """The pattern of ``blocks``' rows on this rank, for assembling them again with new values."""
        return BlockAssembly(self, blocks, nfields)

    def kept_assembly(self, previous, blocks, nfields: int) -> tuple:
        """``(assembly, new_pattern)``: ``previous`` (a :class:`BlockAssembly` or None) while ``blocks``
        still match it, else a new one; ``new_pattern`` when its matrix pattern differs from
        ``previous``'s (the matrix and any factorization's analysis must be made anew)."""
        if previous is not None and previous.matches(blocks):
            return previous, False
        assembly = self.block_assembly(blocks, nfields)
        return assembly, not assembly.same_pattern(previous)

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


def _index_array(a) -> np.ndarray:
    """``a`` as int32 when its values allow (half the memory of the kept assembly)."""
    return a.astype(np.int32) if a.size == 0 or a.max() < 2**31 - 1 else a.astype(np.int64)


def _terms(blocks, key):
    terms = blocks.get(key)
    if terms is None:
        return []
    return list(terms) if isinstance(terms, (list, tuple)) else [terms]


class BlockAssembly:
    """This rank's rows of a block operator (see :meth:`DistributedGrid.matrix_from_blocks`): their CSR
    pattern, computed once, and where each term's entries go in it.  Assembling again with terms of
    the same patterns (:meth:`matches`) only gathers the terms' values and sums them into place, with
    no sorting and no global row arithmetic (the Jacobian of every Newton iteration)."""

    def __init__(self, dgrid: DistributedGrid, blocks, nfields: int):
        self.dgrid = dgrid
        self.nfields = nfields
        loc = dgrid.local_natural
        nloc = loc.size
        start = nfields * dgrid.layout.owned_range()[0]
        ncols = dgrid.grid.nwet * nfields
        #: per term in assembly order: (key, index, kind, pattern) with kind "local" (LocalDiagonal),
        #: "natural" (n-vector diagonal) or "sparse" (pattern: the CSR's indptr, indices and the gather
        #: of this rank's rows from its data)
        self.terms = []
        #: per term: the position in the CSR data of each of its entries (duplicates share one: they are
        #: summed), and whether its positions are distinct (then one fancy-indexed add places it)
        self.positions, self.distinct = [], []
        gathers = {}
        indptr_parts, indices_parts = [np.zeros(1, np.int64)], []
        nnz = 0
        # one field's block row at a time: the sort's work arrays are a field's share of the entries
        for fi in range(nfields):
            keys, kinds = [], []
            for fj in range(nfields):
                for t_index, blk in enumerate(_terms(blocks, (fi, fj))):
                    if isinstance(blk, LocalDiagonal) or (isinstance(blk, np.ndarray) and blk.ndim == 1):
                        kind = "local" if isinstance(blk, LocalDiagonal) else "natural"
                        self.terms.append(((fi, fj), t_index, kind, None))
                        keys.append(np.arange(nloc, dtype=np.int64) * ncols + (start + fj * nloc)
                                    + np.arange(nloc, dtype=np.int64))
                        kinds.append(True)
                        continue
                    A = sp.csr_matrix(blk)
                    counts = A.indptr[loc + 1] - A.indptr[loc]
                    if id(A.indptr) not in gathers:       # one gather per operator (T is in several blocks)
                        # A[loc, :] entry by entry in stored order: row loc[j]'s entries for j = 0, 1, ...
                        first = np.repeat(A.indptr[loc] - np.r_[0, np.cumsum(counts)[:-1]], counts)
                        gathers[id(A.indptr)] = _index_array(first + np.arange(int(counts.sum())))
                    gather = gathers[id(A.indptr)]
                    self.terms.append(((fi, fj), t_index, "sparse", (A.indptr, A.indices, gather)))
                    keys.append(np.repeat(np.arange(nloc, dtype=np.int64), counts) * ncols
                                + dgrid.global_rows(nfields, fj, A.indices[gather]))
                    kinds.append(bool(A.has_canonical_format))
            if not keys:
                indptr_parts.append(np.full(nloc, nnz, dtype=np.int64))
                continue
            key = np.concatenate(keys)
            order = np.argsort(key, kind="stable")
            sorted_key = key[order]
            del key
            new_entry = np.ones(sorted_key.size, dtype=bool)
            new_entry[1:] = sorted_key[1:] != sorted_key[:-1]
            position = np.empty(sorted_key.size, dtype=np.int64)
            position[order] = nnz + np.cumsum(new_entry) - 1
            del order
            unique_keys = sorted_key[new_entry]
            del sorted_key, new_entry
            bounds = np.r_[0, np.cumsum([k.size for k in keys])]
            for (lo, hi), canonical in zip(zip(bounds[:-1], bounds[1:]), kinds):
                pos = _index_array(position[lo:hi])
                self.positions.append(pos)
                self.distinct.append(canonical or np.unique(pos).size == pos.size)
            del position, keys
            row = unique_keys // ncols
            indices_parts.append(unique_keys - row * ncols)
            indptr_parts.append(nnz + np.cumsum(np.bincount(row, minlength=nloc)))
            nnz += unique_keys.size
        self.nnz = nnz
        self.indptr = np.concatenate(indptr_parts).astype(PETSc.IntType)
        self.indices = (np.concatenate(indices_parts) if indices_parts else np.zeros(0, np.int64)).astype(
            PETSc.IntType)
        self.size = ((nloc * nfields, ncols), (nloc * nfields, ncols))

    def matches(self, blocks) -> bool:
        """Whether ``blocks`` has this assembly's terms with the same patterns (values may differ)."""
        seen = 0
        for fi in range(self.nfields):
            for fj in range(self.nfields):
                for t_index, blk in enumerate(_terms(blocks, (fi, fj))):
                    if seen >= len(self.terms):
                        return False
                    key, index, kind, pattern = self.terms[seen]
                    seen += 1
                    if key != (fi, fj) or index != t_index:
                        return False
                    if kind == "local":
                        if not isinstance(blk, LocalDiagonal):
                            return False
                    elif kind == "natural":
                        if not (isinstance(blk, np.ndarray) and blk.ndim == 1):
                            return False
                    else:
                        if not sp.issparse(blk) or blk.format != "csr":
                            return False
                        indptr, indices, _ = pattern
                        if not ((blk.indptr is indptr or np.array_equal(blk.indptr, indptr))
                                and (blk.indices is indices or np.array_equal(blk.indices, indices))):
                            return False
        return seen == len(self.terms)

    def same_pattern(self, other: "BlockAssembly") -> bool:
        return (other is not None and np.array_equal(self.indptr, other.indptr)
                and np.array_equal(self.indices, other.indices))

    def values(self, blocks) -> np.ndarray:
        """The CSR data of this rank's rows for ``blocks`` (whose patterns must match)."""
        loc = self.dgrid.local_natural
        data = np.zeros(self.nnz)
        # term by term in assembly order: each entry's sum is accumulated in the same order every time
        for (key, t_index, kind, pattern), pos, distinct in zip(self.terms, self.positions, self.distinct):
            blk = _terms(blocks, key)[t_index]
            if kind == "local":
                v = blk.values
            elif kind == "natural":
                v = np.asarray(blk)[loc]
            else:
                v = sp.csr_matrix(blk).data[pattern[2]]
            if distinct:
                data[pos] += v
            else:
                np.add.at(data, pos, v)
        return data

    def matrix(self, blocks, mat=None) -> "PETSc.Mat":
        """The distributed matrix of ``blocks``: created, or ``mat`` refilled in place (same pattern), so a
        factorization can reuse its analysis."""
        data = self.values(blocks)
        if mat is None:
            mat = PETSc.Mat().createAIJ(self.size, comm=self.dgrid.comm)
            mat.setPreallocationCSR((self.indptr, self.indices, data))
        else:
            mat.zeroEntries()
            mat.setValuesCSR(self.indptr, self.indices, data, addv=PETSc.InsertMode.INSERT_VALUES)
        mat.assemble()
        return mat
