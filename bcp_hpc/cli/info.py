"""``bcp-hpc info``: versions, factorization packages, preconditioners, ranks."""
from __future__ import annotations

from .. import __version__
from ..log import rprint
from ..petsc_env import import_petsc4py

PETSc = import_petsc4py()

FACTOR_PACKAGES = ("mumps", "superlu_dist", "superlu", "umfpack", "klu", "petsc")
PRECONDITIONERS = ("hypre", "gamg", "asm", "bjacobi", "ilu", "fieldsplit", "lu")


def _factor_available(pkg: str) -> bool:
    A = PETSc.Mat().createAIJ((2, 2), comm=PETSc.COMM_SELF)
    A.setUp()
    A.setValue(0, 0, 2.0)
    A.setValue(1, 1, 2.0)
    A.assemble()
    ok = True
    try:
        F = A.getFactor(pkg, "lu") if hasattr(A, "getFactor") else None
        if F is None:
            ksp = PETSc.KSP().create(PETSc.COMM_SELF)
            ksp.setOperators(A)
            ksp.setType("preonly")
            pc = ksp.getPC()
            pc.setType("lu")
            pc.setFactorSolverType(pkg)
            ksp.setUp()
            ksp.destroy()
        else:
            F.destroy()
    except PETSc.Error:
        ok = False
    A.destroy()
    return ok


def _pc_available(name: str) -> bool:
    pc = PETSc.PC().create(PETSc.COMM_SELF)
    try:
        pc.setType(name)
        return True
    except PETSc.Error:
        return False
    finally:
        pc.destroy()


def run(args):
    if getattr(args, "options", False):
        from ..solvers.options import options_table
        rprint(options_table())
        return 0
    comm = PETSc.COMM_WORLD
    v = PETSc.Sys.getVersion()
    lines = [f"bcp-hpc {__version__}", f"PETSc {'.'.join(map(str, v))} (PETSC_DIR={__import__('os').environ.get('PETSC_DIR', '?')})"]
    try:
        from ..petsc_env import import_slepc4py
        S = import_slepc4py()
        lines.append(f"SLEPc {'.'.join(map(str, S.Sys.getVersion()))}")
    except ImportError as exc:
        lines.append(f"SLEPc not available ({exc})")
    try:
        from mpi4py import MPI
        lines.append(f"MPI {'.'.join(map(str, MPI.Get_version()))}: {MPI.Get_library_version().splitlines()[0].strip()}")
    except ImportError:
        lines.append("mpi4py not available")
    import h5py
    import numpy
    import scipy
    lines.append(f"numpy {numpy.__version__}, scipy {scipy.__version__}, h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version})")
    lines.append(f"ranks: {comm.getSize()}")
    lines.append("LU factorization packages: " + ", ".join(f"{p}={'yes' if _factor_available(p) else 'no'}" for p in FACTOR_PACKAGES))
    lines.append("preconditioners: " + ", ".join(f"{p}={'yes' if _pc_available(p) else 'no'}" for p in PRECONDITIONERS))
    tao = PETSc.TAO().create(PETSc.COMM_SELF)
    try:
        tao.setType("ntr")
        lines.append("TAO: available (ntr, bntr, nls)")
    except PETSc.Error:
        lines.append("TAO: not available")
    finally:
        tao.destroy()
    from ..cycles import registry
    lines.append("cycles: " + "; ".join(f"{c.name} ({c.title}; experiments: "
                                        f"{', '.join(e.name for e in c.experiments) or 'none'})"
                                        for c in registry.all_cycles()))
    for ln in lines:
        rprint(ln)
    return 0
