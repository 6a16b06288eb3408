"""Run the MPI suite (tests/mpi) under mpirun on 1, 2 and 4 (oversubscribed) ranks."""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_mpi_suite(ranks):
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("no mpirun/mpiexec on PATH")
    env = dict(os.environ, BCP_MPI_SUITE="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [mpirun, "-n", str(ranks), "--oversubscribe", sys.executable, "-m", "pytest", "-q", "-x",
           "-p", "no:cacheprovider", os.path.join(HERE, "mpi")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"MPI suite failed on {ranks} ranks:\n{out[-6000:]}"
    assert " passed" in out, out[-3000:]
