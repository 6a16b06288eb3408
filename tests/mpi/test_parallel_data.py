"""Run under mpirun: every parallel loading strategy gives each rank exactly its serial values."""
import os
import tempfile

import numpy as np

from bcp_hpc.data.inputs import InputsFile, write_inputs
from bcp_hpc.data.parallel import load_local
from bcp_hpc.data.synthetic import synthetic_inputs
from bcp_hpc.grid.embedded import embedded_grid
from bcp_hpc.grid.layout import Layout
from bcp_hpc.petsc_env import import_petsc4py

PETSc = import_petsc4py()
MPI_COMM = PETSc.COMM_WORLD.tompi4py()


def test_parallel_loading_strategies_equal_serial():
    g = embedded_grid()
    d = MPI_COMM.bcast(tempfile.mkdtemp(prefix="bcp-pdata-") if MPI_COMM.rank == 0 else None, root=0)
    path = os.path.join(d, "inputs.h5")
    if MPI_COMM.rank == 0:
        fields, npp = synthetic_inputs(g)
        write_inputs(path, g, fields=fields, npp=npp)
    MPI_COMM.Barrier()
    layout = Layout(g, MPI_COMM.size, MPI_COMM.rank)
    with InputsFile(path) as f:
        serial = {n: f.field(n, g) for n in ("po4", "temperature")}
    loc = layout.local_natural(MPI_COMM.rank)
    for strategy in ("hyperslab", "scatter", "whole"):
        got = load_local(path, ["po4", "temperature"], g, layout, MPI_COMM, strategy)
        for n in got:
            ok = np.array_equal(got[n], serial[n][loc])
            assert MPI_COMM.allreduce(ok, op=__import__("mpi4py").MPI.LAND), (strategy, n)
    # the local pieces tile the whole field exactly once
    sizes = MPI_COMM.allgather(loc.size)
    assert sum(sizes) == g.nwet
    MPI_COMM.Barrier()
    if MPI_COMM.rank == 0:
        os.remove(path)
        os.rmdir(d)
