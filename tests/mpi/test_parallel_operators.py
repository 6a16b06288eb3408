"""Run under mpirun (tests/test_mpi_suites.py): distributed objects equal the serial ones."""
import os
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.operators.io import load_transport_petsc, write_ocim2
from bcp_hpc.operators.sinking import martin_operator
from bcp_hpc.petsc_env import import_petsc4py

PETSc = import_petsc4py()
COMM = PETSc.COMM_WORLD
MPI_COMM = COMM.tompi4py()


def all_ranks(flag: bool) -> bool:
    """Collective AND, so every rank asserts the same value (no rank left in a collective)."""
    return bool(MPI_COMM.allreduce(bool(flag), op=__import__("mpi4py").MPI.LAND))


def gather_natural_matrix(dgrid, mat, nfields):
    """The distributed matrix in natural block ordering, as SciPy CSR on every rank."""
    gidx = dgrid.global_index(nfields)  # (nf, n) natural -> global
    N = gidx.size
    inv = np.empty(N, dtype=np.int64)
    nat = np.arange(dgrid.grid.nwet)
    for f in range(nfields):
        inv[gidx[f]] = f * dgrid.grid.nwet + nat
    ip, jj, vv = mat.getValuesCSR()
    r0, _ = mat.getOwnershipRange()
    rows = inv[np.repeat(np.arange(r0, r0 + ip.size - 1), np.diff(ip))]
    cols = inv[jj]
    parts = MPI_COMM.allgather((rows, cols, vv))
    r = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    v = np.concatenate([p[2] for p in parts])
    return sp.csr_matrix((v, (r, c)), shape=(N, N))


@pytest.fixture(scope="module")
def world():
    from bcp_hpc.operators.world import load_world
    return load_world("embedded")


@pytest.fixture(scope="module")
def dgrid(world):
    return DistributedGrid(world.grid, COMM)


def test_columns_never_cross_ranks(dgrid):
    owner = dgrid.layout.owner_of_natural()
    cols = dgrid.grid.box_column
    # for each column, min owner == max owner
    mx = np.zeros(cols.max() + 1, dtype=np.int64)
    mn = np.full(cols.max() + 1, 1 << 30, dtype=np.int64)
    np.maximum.at(mx, cols, owner)
    np.minimum.at(mn, cols, owner)
    assert all_ranks(np.all(mx[np.unique(cols)] == mn[np.unique(cols)]))


def test_transport_matrix_identical_to_serial(world, dgrid):
    Tp = dgrid.matrix_from_scipy(world.T)
    Tn = gather_natural_matrix(dgrid, Tp, 1)
    same = (Tn != world.T).nnz == 0
    Tp.destroy()
    assert all_ranks(same)


def test_block_matrix_identical_to_serial(world, dgrid):
    g = world.grid
    F = martin_operator(g, 1 / (30 * 86400.0), 0.9)
    diag = np.linspace(1e-8, 2e-8, g.nwet)
    blocks = {(0, 0): world.T, (0, 1): -F, (1, 1): F + sp.diags(diag), (1, 0): diag}
    M = dgrid.matrix_from_blocks(blocks, 2)
    ref = sp.bmat([[world.T, -F], [sp.diags(diag), F + sp.diags(diag)]], format="csr")
    Mn = gather_natural_matrix(dgrid, M, 2)
    diff = abs(Mn - ref).max()
    # update values in place with the same pattern and compare again
    blocks[(1, 0)] = 2 * diag
    dgrid.matrix_from_blocks(blocks, 2, mat=M)
    ref2 = sp.bmat([[world.T, -F], [sp.diags(2 * diag), F + sp.diags(diag)]], format="csr")
    diff2 = abs(gather_natural_matrix(dgrid, M, 2) - ref2).max()
    M.destroy()
    assert all_ranks(diff == 0 and diff2 == 0)


def test_vectors_round_trip_and_matvec(world, dgrid):
    g = world.grid
    rng = np.random.default_rng(1)
    x = rng.standard_normal(g.nwet)
    v = dgrid.vec_from_natural([x])
    back = dgrid.natural_from_vec(v)[0]
    Tp = dgrid.matrix_from_scipy(world.T)
    y = Tp.createVecLeft()
    Tp.mult(v, y)
    yn = dgrid.natural_from_vec(y)[0]
    ref = world.T @ x
    ok = np.array_equal(back, x) and np.abs(yn - ref).max() <= 1e-13 * np.abs(ref).max()
    root = dgrid.natural_from_vec(v, root=0)
    if COMM.getRank() == 0:
        ok = ok and np.array_equal(root[0], x)
    # the inverse: fields held on rank 0 only, scattered by rows (a checkpoint's state on resume)
    two = np.vstack([x, 2 * x])
    w = dgrid.vec_from_root(two if COMM.getRank() == 0 else None, 2)
    ok = ok and np.array_equal(dgrid.natural_from_vec(w, 2), two)
    w.destroy()
    for o in (v, y, Tp):
        o.destroy()
    assert all_ranks(ok)


def test_distributed_transport_file_reading(world, dgrid):
    d = tempfile.mkdtemp() if COMM.getRank() == 0 else None
    d = MPI_COMM.bcast(d)
    path = os.path.join(d, "T.mat")
    if COMM.getRank() == 0:
        write_ocim2(path, world.grid, world.T, version="v7.3")
    MPI_COMM.Barrier()
    Tp, defects = load_transport_petsc(path, dgrid)
    Tn = gather_natural_matrix(dgrid, Tp, 1)
    Tp.destroy()
    ok = abs(Tn - world.T).max() <= 1e-15 * abs(world.T).max() and defects["volume_column_sum_rel"] < 1e-13
    assert all_ranks(ok)


def test_parallel_age_equals_serial(world, dgrid):
    from bcp_hpc.diagnostics.age import ideal_age
    g = world.grid
    Tp = dgrid.matrix_from_scipy(world.T)
    age = ideal_age(dgrid, Tp)
    Tp.destroy()
    surf = (g.box_k == 0).astype(float)
    ref = spl.spsolve((world.T + sp.diags(surf / 86400.0)).tocsc(), 1 - surf) / (365 * 86400.0)
    assert all_ranks(np.abs(age - ref).max() <= 1e-9 * ref.max())


def test_kept_block_assembly_refills_as_a_new_assembly_would(world, dgrid):
    """A block assembly computed once and refilled with new values equals the serial operator built from
    the same terms: this rank's rows of T and of a CSR with unsorted, duplicated entries (summed), local
    diagonals (LocalDiagonal) and an n-vector diagonal, several terms per block.  Terms with another
    pattern do not match it."""
    from bcp_hpc.grid.distributed import LocalDiagonal
    from bcp_hpc.operators.rows import restrict_rows
    g = world.grid
    n = g.nwet
    loc = dgrid.local_natural
    rng = np.random.default_rng(3)
    # row i holds (i, i) twice and (i, i-1) in reverse column order: unsorted and duplicated
    i = np.arange(n)
    cols = np.stack([i, np.maximum(i - 1, 0), i], axis=1).ravel()
    W = sp.csr_matrix((np.zeros(3 * n), cols, np.arange(0, 3 * n + 1, 3)), shape=(n, n))

    def terms(seed):
        r = np.random.default_rng(seed)
        w = W.copy()
        w.data = r.standard_normal(w.data.size)
        d_nat = r.standard_normal(n)                 # the same on every rank
        d_loc = r.standard_normal(loc.size)
        blocks = {(0, 0): [restrict_rows(world.T, loc), LocalDiagonal(d_loc)], (0, 1): [restrict_rows(w, loc)],
                  (1, 1): [restrict_rows(world.T, loc), d_nat, restrict_rows(w, loc)]}
        full = np.zeros(n)
        full[loc] = d_loc
        full = MPI_COMM.allreduce(full)              # every rank's local diagonal, for the serial reference
        ref = sp.bmat([[world.T + sp.diags(full), w], [None, world.T + sp.diags(d_nat) + w]], format="csr")
        return blocks, ref

    blocks, ref = terms(1)
    assembly = dgrid.block_assembly(blocks, 2)
    M = assembly.matrix(blocks)
    ok = abs(gather_natural_matrix(dgrid, M, 2) - ref).max() <= 1e-15 * abs(ref).max()
    blocks2, ref2 = terms(2)
    ok = ok and assembly.matches(blocks2)
    assembly.matrix(blocks2, mat=M)
    fresh = dgrid.matrix_from_blocks(blocks2, 2)
    ok = ok and abs(gather_natural_matrix(dgrid, M, 2) - ref2).max() <= 1e-15 * abs(ref2).max()
    ok = ok and (gather_natural_matrix(dgrid, M, 2) != gather_natural_matrix(dgrid, fresh, 2)).nnz == 0
    other = dict(blocks2)
    other[(1, 0)] = [LocalDiagonal(rng.standard_normal(loc.size))]
    ok = ok and not assembly.matches(other)
    ok = ok and not assembly.matches({**blocks2, (0, 1): [restrict_rows(world.T, loc)]})
    for o in (M, fresh):
        o.destroy()
    assert all_ranks(ok)
