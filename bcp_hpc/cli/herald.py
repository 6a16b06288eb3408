"""The interrupt herald: a small process beside rank 0 that says an interrupt the moment it arrives.

Run as ``python -I -S herald.py FD WHERE`` by :func:`bcp_hpc.cli.session.start_herald` (standard
library only).  FD is the read end of the pipe that rank 0's Python writes each signal's number to
from its C-level handler (``signal.set_wakeup_fd``), which works while rank 0's main thread is inside
a long library call that holds the GIL (a MUMPS factorization), where no Python code of its own can
run.  ``mpirun`` kills the ranks one second after it passes an interrupt on, so the line has to be
written by someone who is not waiting for that call to return.

The herald writes the interrupt line at the first SIGINT or SIGTERM and ends when the pipe closes:
when rank 0 ends, or when it closes the pipe after a run.  It runs in a process group of its own (a
terminal's Ctrl-C and a launcher's kill of rank 0's group do not reach it) and ignores both signals.
"""
import os
import signal
import sys

SAID = (signal.SIGINT, signal.SIGTERM)


def main(argv) -> int:
    fd, where = int(argv[1]), argv[2]
    for sig in SAID:
        signal.signal(sig, signal.SIG_IGN)
    said = False
    while True:
        data = os.read(fd, 64)
        if not data:
            return 0
        for signum in data:
            if not said and signum in SAID:
                name = signal.Signals(signum).name
                os.write(2, f"[bcp-hpc] interrupted ({name}): stopping{where}\n".encode())
                said = True


if __name__ == "__main__":
    sys.exit(main(sys.argv))
