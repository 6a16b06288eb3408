"""What every command does around its work: interrupts that end every rank promptly, and the PETSc
options that nothing read (mistyped names) reported at the end.

Interrupts: SIGINT and SIGTERM raise :class:`Interrupted` in Python code on every rank (``mpirun``
passes Ctrl-C on to the ranks as SIGTERM, and kills them one second later).  The one line that says
so comes from rank 0's herald (:mod:`bcp_hpc.cli.herald`), a small process that rank 0's signal
handler at C level tells at once, even while rank 0 sits in a long factorization or in a collective
and cannot run Python.  :func:`end_interrupted` then ends each rank with status 130 (SIGINT) or 143
(SIGTERM), without waiting for the others in MPI.  Checkpoints are written atomically, so the last
complete one stays; temporary files of an interrupted write are removed on the way out, or by the
next run when the process was killed first.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)


class Interrupted(BaseException):
    """SIGINT or SIGTERM (a BaseException, like KeyboardInterrupt: nothing catches it by accident)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        return 128 + self.signum


def install_signal_handlers():
    def handler(signum, frame):
        raise Interrupted(signum)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


class Herald:
    """Rank 0's herald process and the pipe its signal handler writes to (see the module's docstring)."""

    def __init__(self, where: str):
        import subprocess
        from . import herald
        read_end, self._write_end = os.pipe()
        self._process = None
        try:
            os.set_blocking(self._write_end, False)     # set_wakeup_fd's requirement
            self._process = subprocess.Popen([sys.executable, "-I", "-S", herald.__file__, str(read_end), where],
                                             pass_fds=(read_end,), stdin=subprocess.DEVNULL,
                                             process_group=0)     # out of reach of a terminal's Ctrl-C
            self._previous = signal.set_wakeup_fd(self._write_end, warn_on_full_buffer=False)
        except BaseException:
            if self._process is not None:
                self._process.kill()
                self._process.wait()
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    def close(self, timeout: float = 5.0):
        """Close the pipe and wait for the herald, which first says any interrupt it was told of."""
        if self._process is None:
            return
        signal.set_wakeup_fd(self._previous)
        os.close(self._write_end)
        try:
            self._process.wait(timeout)
        except Exception:  # noqa: BLE001 - a herald that does not end must not keep the run
            self._process.kill()
        self._process = None


def start_herald(where: str):
    """A :class:`Herald` for rank 0 whose line ends with ``where``; None (rank 0 then says the
    interrupt itself, once Python runs again) when no process can be started."""
    try:
        return Herald(where)
    except (OSError, ValueError) as exc:        # ValueError: not the main thread
        log.debug("no interrupt herald: %s", exc)
        return None


def end_interrupted(exc: Interrupted, herald, where: str, rank: int):
    """End this rank after ``exc``: rank 0's herald has said it (or rank 0 says it here when it has
    none); the status is 128 + the signal's number, and no MPI finalisation waits for other ranks."""
    if herald is not None:
        herald.close()
    elif rank == 0:
        print(f"[bcp-hpc] interrupted ({exc}): stopping{where}", file=sys.stderr, flush=True)
    exit_now(exc.status)


def exit_now(status: int):
    """End this process now (no MPI finalisation that would wait for ranks stuck in a collective)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


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
