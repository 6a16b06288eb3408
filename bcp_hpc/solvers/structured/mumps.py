"""MUMPS settings of large Schur complements (more than :data:`AMF_ABOVE_UNKNOWNS` unknowns).

On one process :class:`~bcp_hpc.solvers.linear.LinearSolver` orders S with METIS and factors it
full rank (METIS' fronts are too small for block-low-rank compression to pay).  On several
processes MUMPS orders S itself, and these defaults apply (all under ``<prefix>schur_``, all
overridable):

* AMF ordering (``ICNTL(7) = 2``): Debian's MUMPS 5.5 PORD, the default, reads out of bounds on
  this Schur graph at OCIM2 size (valgrind: uninitialised reads in PORD's
  ``findIndMultisecs``), which segfaults depending on the heap; ``-<prefix>schur_mat_mumps_icntl_7 4``
  selects PORD again;
* block-low-rank factors (``ICNTL(35) = 2``, tolerance :data:`BLR_TOLERANCE`), in the UCFS
  variant (``ICNTL(36) = 1``): AMF's factor is larger than PORD's, and an inexact factor is
  absorbed by the outer GMRES.

Measured figures (factor flops, memory, iterations) are in docs/benchmarks.md.
"""
from __future__ import annotations

#: Schur complements larger than this get the large-S settings and right-hand sides in blocks
AMF_ABOVE_UNKNOWNS = 200_000
#: block-low-rank compression tolerance (``-<prefix>schur_mat_mumps_cntl_7``)
BLR_TOLERANCE = "1e-7"
#: right-hand sides per block solve when S is large (each needs its own Krylov basis; ``-<prefix>rhs_block``)
LARGE_RHS_BLOCK = 5


def large_schur_defaults() -> dict:
    """Options (after ``<prefix>schur_``) of a large Schur factor that MUMPS orders itself."""
    return {"mat_mumps_icntl_7": "2", "mat_mumps_icntl_35": "2", "mat_mumps_icntl_36": "1",
            "mat_mumps_cntl_7": BLR_TOLERANCE}
