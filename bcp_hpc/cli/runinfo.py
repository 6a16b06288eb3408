"""``run_info.json``: how a run was made (command, ranks, software versions, solver paths, timings), for
its report and for anyone who has to reproduce it."""
from __future__ import annotations

import json
import os
import platform
import shlex
import socket
import time

from .. import __version__
from ..io.atomic import write_text_atomic
from ..petsc_env import import_petsc4py

#: when the command started (seconds since the epoch) and its command line; the CLI's entry point sets them
STARTED = time.time()
COMMAND = ""


def _version(module: str):
    try:
        return __import__(module).__version__
    except (ImportError, AttributeError):
        return None


def software() -> dict:
    """Versions of the package and of what it runs on."""
    import h5py
    import numpy
    import scipy
    PETSc = import_petsc4py()
    out = {"bcp_hpc": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
           "scipy": scipy.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
           "petsc": ".".join(map(str, PETSc.Sys.getVersion())), "petsc4py": _version("petsc4py")}
    # the package only (slepc4py.SLEPc would initialise SLEPc here, on rank 0 alone, and register log events
    # that the other ranks lack: -log_view's reductions at the end would then wait forever)
    out["slepc4py"] = _version("slepc4py")
    try:
        from mpi4py import MPI
        out["mpi"] = MPI.Get_library_version().replace("\x00", "").splitlines()[0].strip()
    except ImportError:
        out["mpi"] = None
    return out


def set_command(argv: list):
    global STARTED, COMMAND
    STARTED = time.time()
    COMMAND = "bcp-hpc " + " ".join(shlex.quote(a) for a in argv)


def write_run_info(out_dir: str):
    """``run_info.json`` in ``out_dir`` (rank 0): the command line, ranks, host, start, wall time, the
    steady-state solver paths the run used and the software versions."""
    PETSc = import_petsc4py()
    if PETSc.COMM_WORLD.getRank() != 0:
        return
    from ..solvers.steady import SOLVER_PATHS
    info = {"command": COMMAND, "ranks": PETSc.COMM_WORLD.getSize(),
            "host": socket.gethostname(), "platform": platform.platform(),
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(STARTED)),
            "wall_time_s": round(time.time() - STARTED, 3), "solver_paths": dict(SOLVER_PATHS),
            "software": software(), "working_directory": os.getcwd()}
    write_text_atomic(os.path.join(out_dir, "run_info.json"), json.dumps(info, indent=2) + "\n")
