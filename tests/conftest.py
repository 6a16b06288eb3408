import os

import pytest

from bcp_hpc.petsc_env import import_petsc4py

import_petsc4py()

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED_DATA = os.environ.get("BCP_SHARED_DATA") or os.path.join(os.path.dirname(REPO), "shared", "data")
OCIM2_DIR = os.path.join(SHARED_DATA, "ocim2_91x180x24")
OCIM2_MASK = os.path.join(OCIM2_DIR, "M3d91x180x24.mat")

# tests/mpi is run by tests/test_mpi_suites.py under mpirun; collect it directly only there.
collect_ignore = [] if os.environ.get("BCP_MPI_SUITE") else ["mpi"]


@pytest.fixture(scope="session")
def ocim2_mask_path():
    if not os.path.exists(OCIM2_MASK):
        pytest.skip(f"OCIM2 mask not found at {OCIM2_MASK} (../shared absent)")
    return OCIM2_MASK


@pytest.fixture(scope="session")
def embedded():
    from bcp_hpc.grid.embedded import embedded_grid
    return embedded_grid()


@pytest.fixture(scope="session")
def embedded_world():
    from bcp_hpc.operators.world import load_world
    return load_world("embedded")


@pytest.fixture(scope="session")
def small_grid():
    """A tiny generated world (12 x 24 x 8) for fast exhaustive checks."""
    from bcp_hpc.grid.embedded import embedded_grid
    return embedded_grid(nlat=15, nlon=30, nz=8)
