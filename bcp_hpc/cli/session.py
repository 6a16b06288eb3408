"""What every command does around its work: interrupts that end every rank promptly, and the PETSc
options that nothing read (mistyped names) reported at the end.

Interrupts: SIGINT and SIGTERM raise :class:`Interrupted` in Python code on every rank (``mpirun``
forwards both).  :func:`bcp_hpc.cli.main.main` then prints one line and ends the process with status
130 (SIGINT) or 143 (SIGTERM), without waiting for the other ranks in MPI: a rank that sits in an MPI
reduction cannot see the signal, and ``mpirun`` ends it when its peer exits.  The line comes from
rank 0; because ``mpirun`` ends the whole job as soon as one process exits, the other ranks first
give rank 0 :data:`INTERRUPT_GRACE_S` to say it and exit (:func:`await_first_rank`), and say it
themselves only if rank 0 did not (it sits in a collective that waits for them).
Checkpoints are written atomically, so the last complete one stays, and temporary files of an
interrupted write are removed on the way out.
"""
from __future__ import annotations

import ctypes
import logging
import signal

log = logging.getLogger(__name__)


class Interrupted(BaseException):
    """SIGINT or SIGTERM (a BaseException, like KeyboardInterrupt: nothing catches it by accident)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        return 128 + self.signum


#: seconds a rank other than 0 waits, once interrupted, for rank 0 to report the interrupt and exit
INTERRUPT_GRACE_S = 2.0


def await_first_rank(status: int):
    """On a rank other than 0, after an interrupt: wait up to :data:`INTERRUPT_GRACE_S` for rank 0 to
    report it and exit (``mpirun`` then ends this process).  A further signal meanwhile ends this
    process at once, silently.  Returns when rank 0 did not end in time."""
    import os
    import sys
    import time

    def quietly(signum, frame):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, quietly)
    time.sleep(INTERRUPT_GRACE_S)


def install_signal_handlers():
    def handler(signum, frame):
        raise Interrupted(signum)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _libpetsc():
    """The libpetsc that petsc4py loaded (found in this process' memory map)."""
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.split()[-1]
                if "/libpetsc" in path and ".so" in path:
                    return ctypes.CDLL(path)
    except OSError:
        pass
    return None


def unused_options() -> list:
    """``(name, value)`` of every option in PETSc's database that nothing has read
    (``PetscOptionsLeftGet``); empty when the library cannot be reached."""
    from ..petsc_env import import_petsc4py
    PETSc = import_petsc4py()
    lib = _libpetsc()
    if lib is None or not hasattr(lib, "PetscOptionsLeftGet"):
        return []
    itype = ctypes.c_int64 if PETSc.IntType().itemsize == 8 else ctypes.c_int32
    n = itype(0)
    names = ctypes.POINTER(ctypes.c_char_p)()
    values = ctypes.POINTER(ctypes.c_char_p)()
    lib.PetscOptionsLeftGet.argtypes = [ctypes.c_void_p, ctypes.POINTER(itype),
                                        ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p)),
                                        ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p))]
    if lib.PetscOptionsLeftGet(None, ctypes.byref(n), ctypes.byref(names), ctypes.byref(values)) != 0:
        return []
    out = []
    for i in range(n.value):
        name = names[i].decode() if names[i] else ""
        value = values[i].decode() if values[i] else ""
        out.append((name, value))
    if hasattr(lib, "PetscOptionsLeftRestore"):
        lib.PetscOptionsLeftRestore.argtypes = lib.PetscOptionsLeftGet.argtypes
        lib.PetscOptionsLeftRestore(None, ctypes.byref(n), ctypes.byref(names), ctypes.byref(values))
    return out


#: options PETSc reads only at the end (PetscFinalize) or that only configure start-up
READ_AT_EXIT = ("log_view", "memory_view", "options_left", "malloc_dump", "objects_dump", "help", "log_trace")


def report_unused_options(given: list):
    """Warn about the command-line options (``given``: names without the dash) that nothing read."""
    left = {name for name, _ in unused_options()}
    unused = [g for g in given if g in left and not g.startswith(READ_AT_EXIT)]
    if unused:
        log.warning("PETSc options that nothing used (mistyped, or for a solver this run does not build): %s",
                    ", ".join("-" + u for u in unused))
    return unused
