"""Run under mpirun (tests/test_mpi_suites.py): the world each rank builds equals the serial world,
field by field and operator row by operator row, for every world source; no rank holds the whole
operator in a solve."""
import os
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp

from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.grid.embedded import embedded_grid
from bcp_hpc.operators.circulation import synthetic_circulation
from bcp_hpc.operators.io import read_ocim2, write_hdf5, write_ocim2
from bcp_hpc.operators.rows import MatrixTransport, ScatteredTransport, StreamedTransport, restrict_rows
from bcp_hpc.operators.world import load_world
from bcp_hpc.petsc_env import import_petsc4py

PETSc = import_petsc4py()
COMM = PETSc.COMM_WORLD
MPI_COMM = COMM.tompi4py()
HERE = os.path.dirname(os.path.abspath(__file__))
OCIM2_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "..", "shared", "data", "ocim2_91x180x24")


def all_ranks(flag: bool) -> bool:
    return bool(MPI_COMM.allreduce(bool(flag), op=__import__("mpi4py").MPI.LAND))


def same_rows(A, B, rows) -> bool:
    """Rows ``rows`` of A and B hold the same entries, bit for bit (pattern and values)."""
    a = sp.csr_matrix(A)[rows]
    b = sp.csr_matrix(B)[rows]
    a.sort_indices()
    b.sort_indices()
    return (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


def only_rows(A, rows) -> bool:
    """A has no entry outside ``rows``."""
    keep = np.zeros(A.shape[0], dtype=bool)
    keep[rows] = True
    return not np.any(np.diff(sp.csr_matrix(A).indptr)[~keep])


@pytest.fixture(scope="module")
def tmpdir_shared():
    d = tempfile.mkdtemp() if COMM.getRank() == 0 else None
    return MPI_COMM.bcast(d)


def _check_world(world, T_serial, forcing_serial):
    dgrid = DistributedGrid(world.grid, COMM)
    loc = dgrid.local_natural
    rows = world.transport_rows(loc)
    ok = same_rows(rows, T_serial, loc) and only_rows(rows, loc)
    for name, ref in forcing_serial.items():
        got = getattr(world, name) if name in ("dip_gamma", "temperature") else world.npp_products[name]
        ok = ok and np.array_equal(np.asarray(got), np.asarray(ref), equal_nan=True)
    # the distributed operator from the rank's rows equals the one from the whole matrix
    Tp = dgrid.matrix_from_scipy(rows)
    Tf = dgrid.matrix_from_scipy(T_serial)
    ok = ok and bool(Tp.equal(Tf))
    Tp.destroy()
    Tf.destroy()
    return ok


@pytest.mark.parametrize("source", ["tiny", "embedded", "generated-2deg"])
def test_generated_world_rows_equal_serial(source):
    world = load_world(source)
    g = world.grid
    # the serial reference: the whole operator made independently of the row-by-row path
    T_serial, _ = synthetic_circulation(g)
    ref = load_world(source)
    forcing = {"dip_gamma": ref.dip_gamma, "temperature": ref.temperature, "vgpm": ref.npp("vgpm")}
    assert all_ranks(getattr(world, "_T", None) is None)      # nothing built whole by loading
    assert all_ranks(_check_world(world, T_serial, forcing))
    assert all_ranks(getattr(world, "_T", None) is None)      # nor by taking the rank's rows


def test_ocim2_mask_world_rows_equal_serial():
    if not os.path.exists(os.path.join(OCIM2_DIR, "M3d91x180x24.mat")):
        pytest.skip(f"OCIM2 mask not found in {OCIM2_DIR} (../shared absent)")
    world = load_world("ocim2-mask", OCIM2_DIR)
    T_serial, _ = synthetic_circulation(world.grid)
    ref = load_world("ocim2-mask", OCIM2_DIR)
    assert all_ranks(_check_world(world, T_serial, {"dip_gamma": ref.dip_gamma, "temperature": ref.temperature}))


@pytest.mark.parametrize("version", ["v7.3", "v5"])
def test_ocim2_file_world_rows_equal_serial(tmpdir_shared, version):
    path = os.path.join(tmpdir_shared, f"op_{version.replace('.', '')}.mat")
    tiny = load_world("tiny")
    if COMM.getRank() == 0:
        write_ocim2(path, tiny.grid, tiny.T, version=version)
    MPI_COMM.Barrier()
    world = load_world("ocim2", path)
    # v7.3: streamed by rows, validated by reductions; v5 (no partial read): read on rank 0, sent by rows
    kind = StreamedTransport if version == "v7.3" else ScatteredTransport if COMM.getSize() > 1 else MatrixTransport
    assert all_ranks(type(world.transport) is kind)
    _, T_serial, defects = read_ocim2(path)
    ok = _check_world(world, T_serial, {})
    if kind is ScatteredTransport:          # no rank, rank 0 included, keeps more than its own rows
        loc = DistributedGrid(world.grid, COMM).local_natural
        held = world.transport.held
        ok = ok and only_rows(held, loc) and same_rows(held, T_serial, loc) and getattr(world, "_T", None) is None
        ok = ok and np.array_equal(world.grid.mask, load_world("tiny").grid.mask)
    ok = ok and abs(world.info["conservation"]["volume_column_sum_rel"] - defects["volume_column_sum_rel"]) \
        <= 1e-12 + 1e-9 * defects["volume_column_sum_rel"]
    assert all_ranks(ok)


@pytest.mark.parametrize("version", ["v7.3", "v5"])
def test_file_that_leaks_is_refused_on_every_rank(tmpdir_shared, version):
    """A conservation defect, found from the ranks' rows (v7.3) or by rank 0 (v5): every rank raises the
    same error (none hangs)."""
    from bcp_hpc.errors import InputError
    path = os.path.join(tmpdir_shared, f"leaky{version.replace('.', '')}.mat")
    tiny = load_world("tiny")
    if COMM.getRank() == 0:
        T = tiny.T.tolil()
        T[5, 5] *= 1.5                                     # one box loses mass
        write_ocim2(path, tiny.grid, T.tocsr(), version=version)
    MPI_COMM.Barrier()
    with pytest.raises(InputError, match="conserve mass") as e:
        load_world("ocim2", path)
    assert all_ranks(os.path.basename(path) in str(e.value) and "output.TR" in str(e.value))


def test_system_keeps_only_its_rows():
    """The model system built from a world holds this rank's rows of T and of the sinking operators only,
    and its Jacobian equals the one built from the whole operator."""
    from bcp_hpc.cycles.phosphorus.model import p_model
    from bcp_hpc.models.system import ModelSystem
    world = load_world("tiny")
    g = world.grid
    dgrid = DistributedGrid(g, COMM)
    loc = dgrid.local_natural
    model = p_model(g, world.npp("vgpm"), world.dip_gamma, 2.1, sigma2=0.2)
    by_rows = ModelSystem(model, dgrid, world)
    ok = only_rows(by_rows.T, loc) and all(only_rows(F, loc) for F in by_rows._sink_base.values())
    T_whole, _ = synthetic_circulation(g)
    whole = ModelSystem(model, dgrid, T_whole)
    u = dgrid.create_vec(4)
    u.setArray(np.random.default_rng(COMM.getRank()).uniform(0.1, 2.0, u.getLocalSize()))
    ok = ok and bool(by_rows.jacobian(u).equal(whole.jacobian(u)))
    r1, r2 = by_rows.residual(u), whole.residual(u)
    ok = ok and np.array_equal(r1.getArray(), r2.getArray())
    for o in (u, r1, r2):
        o.destroy()
    by_rows.destroy()
    whole.destroy()
    assert all_ranks(ok)


def test_hdf5_export_of_a_streamed_world_round_trips(tmpdir_shared):
    """Writing a world gathers the whole operator once (on the writing rank): same matrix as the file's."""
    path = os.path.join(tmpdir_shared, "rt73.mat")
    tiny = load_world("tiny")
    if COMM.getRank() == 0:
        write_ocim2(path, tiny.grid, tiny.T, version="v7.3")
    MPI_COMM.Barrier()
    world = load_world("ocim2", path)
    ok = True
    if COMM.getRank() == 0:
        out = os.path.join(tmpdir_shared, "rt.h5")
        write_hdf5(out, world.grid, world.T)
        from bcp_hpc.operators.io import read_hdf5
        _, T = read_hdf5(out)
        ok = (T != read_ocim2(path)[1]).nnz == 0
    assert all_ranks(ok)


def test_generated_grid_of_any_shape_rows_cover_the_operator():
    """Over all ranks, the rows each one built add up to the whole operator exactly once."""
    g = embedded_grid(nlat=15, nlon=30, nz=8)
    from bcp_hpc.operators.rows import SyntheticTransport
    src = SyntheticTransport(g)
    dgrid = DistributedGrid(g, COMM)
    mine = src.rows(dgrid.local_natural)
    parts = MPI_COMM.allgather(sp.csr_matrix(mine))
    total = sum(parts[1:], parts[0])
    whole = src.full()
    assert all_ranks(abs(total - whole).max() == 0 and total.nnz == whole.nnz
                     and np.array_equal(restrict_rows(whole, dgrid.local_natural).indptr, sp.csr_matrix(mine).indptr))
