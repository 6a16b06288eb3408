"""Fill-reducing orderings computed by the package: METIS nested dissection.

Debian's MUMPS 5.5 is built without METIS and SCOTCH: its own orderings are AMD-type (AMF,
QAMD) or PORD.  On the P model's Schur complement at OCIM2 size (400,320 unknowns without
kept columns) METIS' nested dissection needs 4.6e11 factor flops against AMF's 1.4e12, and its
factor holds 351 M entries against 556 M (PORD: 5.4e11 flops, but it reads out of bounds on
that graph, see ``solvers/structured.py``).  PETSc (3.18) hands a user ordering to MUMPS only when the
matrix is on one process (``ICNTL(18) = 0``), so :class:`~bcp_hpc.solvers.linear.LinearSolver`
uses this on one rank; on several ranks MUMPS orders (a cluster's MUMPS built with
ParMETIS / PT-SCOTCH takes ``-<prefix>mat_mumps_icntl_28 2``).

METIS is called through ``ctypes`` from the shared library PETSc itself links on Debian
(``libmetis.so.5``); ``BCP_METIS_LIBRARY`` names another one.  Without it, :func:`metis`
returns ``None`` and the caller keeps the solver's own ordering.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)

_LIBRARY = None          # (ctypes library, numpy integer type of METIS' idx_t) once loaded
_SEARCHED = False
#: METIS_OPTION_PFACTOR: vertices of degree above 0.1 * PFACTOR * (average degree) are ordered
#: last instead of being dissected.  Particle remineralisation couples a box to its whole water
#: column; without this, METIS' order of the P model's Jacobian needs 8 times the factor flops
#: (docs/solvers.md)
DENSE_ROW_FACTOR = 100
_OPTION_PFACTOR = 14


def _candidates():
    env = os.environ.get("BCP_METIS_LIBRARY")
    if env:
        yield env
        return
    found = ctypes.util.find_library("metis")
    if found:
        yield found
    yield "libmetis.so.5"
    yield "libmetis.so"


def _node_nd(lib, idx, indptr, indices):
    """METIS_NodeND with integer width ``idx``; returns perm (new position -> old index) or None."""
    n = len(indptr) - 1
    ctype = ctypes.c_int32 if idx == np.int32 else ctypes.c_int64
    ptr = ctypes.POINTER(ctype)
    xadj = np.ascontiguousarray(indptr, dtype=idx)
    adjncy = np.ascontiguousarray(indices, dtype=idx)
    options = (ctype * 40)()
    lib.METIS_SetDefaultOptions(options)
    options[_OPTION_PFACTOR] = DENSE_ROW_FACTOR
    perm = np.zeros(n, dtype=idx)
    iperm = np.zeros(n, dtype=idx)
    nvtxs = ctype(n)
    rc = lib.METIS_NodeND(ctypes.byref(nvtxs), xadj.ctypes.data_as(ptr), adjncy.ctypes.data_as(ptr),
                          None, options, perm.ctypes.data_as(ptr), iperm.ctypes.data_as(ptr))
    if rc != 1:                                   # METIS_OK
        return None
    return perm


def _is_permutation(p, n) -> bool:
    return p is not None and len(p) == n and np.array_equal(np.sort(p), np.arange(n))


def _index_type(lib):
    """METIS' ``idx_t``: ``METIS_SetDefaultOptions`` fills METIS_NOPTIONS (40) entries with -1,
    160 bytes in a 32-bit build and 320 in a 64-bit one; a zeroed 320-byte buffer tells which."""
    buf = np.zeros(80, dtype=np.int32)
    lib.METIS_SetDefaultOptions(buf.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
    if np.all(buf[:40] == -1) and np.all(buf[40:] == 0):
        return np.int32
    if np.all(buf == -1):
        return np.int64
    return None


def _load():
    """The METIS library and its index width, found once; ``None`` when unavailable."""
    global _LIBRARY, _SEARCHED
    if _SEARCHED:
        return _LIBRARY
    _SEARCHED = True
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
            lib.METIS_NodeND, lib.METIS_SetDefaultOptions      # noqa: B018 (symbols present?)
        except (OSError, AttributeError):
            continue
        idx = _index_type(lib)
        if idx is None:
            continue
        _LIBRARY = (lib, idx)
        log.debug("METIS: %s (%d-bit indices)", name, np.dtype(idx).itemsize * 8)
        return _LIBRARY
    log.info("METIS library not found (BCP_METIS_LIBRARY unset or not loadable): solvers keep their own orderings")
    return None


def available() -> bool:
    return _load() is not None


def symmetric_graph(A) -> sp.csr_matrix:
    """Adjacency of the pattern of ``A + A^T`` without the diagonal (what nested dissection orders)."""
    P = sp.csr_matrix((np.ones(A.nnz), A.indices, A.indptr), shape=A.shape)
    G = (P + P.T).tocsr()
    G.setdiag(0)
    G.eliminate_zeros()
    G.sort_indices()
    return G


#: orderings of the last few nonzero patterns (digest -> perm): the single-tracer blocks of a joint model
#: share one pattern (T plus the diagonal), so nested dissection runs once for all of them
_CACHE: "OrderedDict[bytes, np.ndarray]" = OrderedDict()
CACHE_PATTERNS = 4


def _pattern_digest(A) -> bytes:
    h = hashlib.sha256()
    h.update(np.asarray(A.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(A.indptr, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(A.indices, dtype=np.int64).tobytes())
    return h.digest()


def metis(A):
    """METIS nested-dissection ordering of the square sparse matrix ``A`` (SciPy CSR).

    Returns ``perm`` (int64, new position -> old index: ``A[perm][:, perm]`` is the reordered
    matrix) or ``None`` when METIS is not available.  Unknowns coupled to no other (identity
    rows and columns) cause no fill: they come first and only the rest is dissected.  The order
    depends on the pattern only; the last :data:`CACHE_PATTERNS` patterns' orders are kept."""
    if _load() is None:
        return None
    A = sp.csr_matrix(A)
    key = _pattern_digest(A)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key].copy()
    perm = _metis(A)
    if perm is not None:
        _CACHE[key] = perm.copy()
        while len(_CACHE) > CACHE_PATTERNS:
            _CACHE.popitem(last=False)
    return perm


def _metis(A):
    lib, idx = _load()
    n = A.shape[0]
    G = symmetric_graph(A)
    isolated = np.diff(G.indptr) == 0
    coupled = np.flatnonzero(~isolated)
    if coupled.size == 0:
        return np.arange(n, dtype=np.int64)
    if coupled.size < n:
        G = G[coupled][:, coupled].tocsr()
        G.sort_indices()
    sub = _node_nd(lib, idx, G.indptr, G.indices)
    if not _is_permutation(sub, coupled.size):
        log.warning("METIS_NodeND failed on a %d-unknown graph: the solver's own ordering is kept", coupled.size)
        return None
    return np.concatenate([np.flatnonzero(isolated), coupled[sub]]).astype(np.int64)
