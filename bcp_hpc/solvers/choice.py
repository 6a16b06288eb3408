"""Which steady-state solver path fits: ``-<prefix>solver auto|direct|structured|ooc|iterative``.

Paths:

* ``direct``: monolithic MUMPS LU in core (fastest while the factors fit in memory);
* ``structured``: POP and labile DOP eliminated, MUMPS LU of the 2-field Schur complement,
  GMRES on the full system (about half the memory of ``direct``; :mod:`.structured`);
* ``ooc``: monolithic MUMPS LU out of core (``ICNTL(22) = 1``): factors on disk under
  ``$MUMPS_OOC_TMPDIR`` (default the system temp dir), memory about 1/6 of in-core here;
* ``iterative``: two-level preconditioned FGMRES (:mod:`.twolevel`): no fine-grid factors at
  all, a coarse LU 8x smaller; for grids whose factors fit neither memory nor disk;
* ``blocktri``: block-triangular substitution along the tracer dependency graph
  (:mod:`.blocktri`), one LU per strongly connected component; every path switches to it by
  itself when a model has several components (the joint P-C-O model; ``-<prefix>blocktri 0`` not).

``auto`` estimates the in-core factor memory from the number of unknowns with the model
``MB = 1060 (N / 165,932)^1.45`` (fitted on this package's P model: 1060 MB measured by MUMPS
INFOG(22) on the embedded world, about 11 GB at OCIM2 size; ``bcp-hpc bench scaling`` refits
it) and compares it with the memory available to the ranks of one node (``MemAvailable``
from ``/proc/meminfo``, or ``BCP_MEM_AVAILABLE`` bytes): direct if it needs under 60 %,
structured if half of it does, ooc if a sixth does and the factors fit in half the free
disk, else iterative.  The choice is logged.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

PATHS = ("auto", "direct", "structured", "ooc", "iterative", "blocktri")
REF_UNKNOWNS = 165_932
REF_MB = 1060.0
EXPONENT = 1.45
SAFETY = 0.6


def estimated_factor_bytes(unknowns: int, coefficient_mb: float = REF_MB, exponent: float = EXPONENT) -> float:
    """In-core MUMPS factor memory (bytes, all ranks together) of the 4-tracer P model."""
    return coefficient_mb * 2**20 * (unknowns / REF_UNKNOWNS) ** exponent


#: the iterative path's peak memory grows linearly: about 2.3 kB per unknown (measured on the ladder:
#: 0.40 GB at 165,932, 1.72 GB at 800,640, 3.54 GB at 1.4 M, 12.1 GB at 5.8 M unknowns, 1 rank)
ITERATIVE_BYTES_PER_UNKNOWN = 2300.0


def estimated_iterative_bytes(unknowns: int) -> float:
    """Peak memory (bytes, all ranks) of the two-level iterative path."""
    return ITERATIVE_BYTES_PER_UNKNOWN * unknowns


#: in-core memory of each factorization path relative to the monolithic LU (measured on the ladder)
FACTOR_MEMORY_FRACTION = {"direct": 1.0, "structured": 0.5, "ooc": 1 / 6}


def estimated_path_bytes(unknowns: int, path: str) -> float:
    """Peak memory (bytes, all ranks) of solver ``path`` for the 4-tracer P model."""
    if path == "iterative":
        return estimated_iterative_bytes(unknowns)
    return estimated_factor_bytes(unknowns) * FACTOR_MEMORY_FRACTION[path]


def available_bytes() -> float:
    env = os.environ.get("BCP_MEM_AVAILABLE")
    if env:
        return float(env)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def free_disk_bytes() -> float:
    """Free space where MUMPS writes out-of-core factors (``$MUMPS_OOC_TMPDIR``, else the temp dir)."""
    import shutil
    import tempfile
    d = os.environ.get("MUMPS_OOC_TMPDIR") or tempfile.gettempdir()
    try:
        return float(shutil.disk_usage(d).free)
    except OSError:
        return 0.0


def choose(unknowns: int, requested: str = "auto", available: float | None = None) -> str:
    """The solver path for ``unknowns`` (``requested`` unless it is ``auto``)."""
    if requested not in PATHS:
        from ..errors import ConfigError
        raise ConfigError(f"unknown solver path '{requested}' (choose {', '.join(PATHS)})")
    if requested != "auto":
        return requested
    avail = available_bytes() if available is None else available
    need = estimated_factor_bytes(unknowns)
    fits = {p: estimated_path_bytes(unknowns, p) < SAFETY * avail for p in FACTOR_MEMORY_FRACTION}
    if fits["direct"]:
        path = "direct"
    elif fits["structured"]:
        path = "structured"
    elif fits["ooc"] and need < 0.5 * free_disk_bytes():
        path = "ooc"
    else:
        path = "iterative"
    log.info("solver auto: %d unknowns, estimated in-core factors %.1f GiB, available %.1f GiB -> %s",
             unknowns, need / 2**30, avail / 2**30, path)
    return path
