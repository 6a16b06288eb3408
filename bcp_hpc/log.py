"""Logging that prints on rank 0 only (other ranks log warnings and errors), with levels."""
from __future__ import annotations

import logging
import os
import sys


def mpi_rank() -> int:
    for var in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                pass
    return 0


def setup_logging(level: str = "INFO"):
    rank = mpi_rank()
    lvl = getattr(logging, level.upper(), logging.INFO)
    if rank != 0:
        lvl = max(lvl, logging.WARNING)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if lvl <= logging.DEBUG else "[bcp-hpc] %(message)s"
    if rank != 0:
        fmt = f"[rank {rank}] %(levelname)s: %(message)s"
    logging.basicConfig(level=lvl, format=fmt, stream=sys.stderr, force=True)


def rprint(*args, **kw):
    """print() on rank 0 only."""
    if mpi_rank() == 0:
        print(*args, **kw, flush=True)


#: a phase that has run this long (s) reports its steps at INFO level (progress a user can follow);
#: shorter ones stay at DEBUG, so the many small solves of an inversion do not flood the output
PROGRESS_AFTER_S = 10.0


def progress(logger, started: float, msg: str, *args):
    """Log ``msg`` at INFO once ``started`` (``time.perf_counter()``) is ``PROGRESS_AFTER_S`` ago, else DEBUG."""
    import time
    level = logging.INFO if time.perf_counter() - started >= PROGRESS_AFTER_S else logging.DEBUG
    logger.log(level, msg, *args)
