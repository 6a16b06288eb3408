"""The current trust-region radius of a TAO solver.

petsc4py 3.18 exposes ``setInitialTrustRegionRadius`` but no getter, so the C function
``TaoGetCurrentTrustRegionRadius`` is called through ctypes on the PETSc library already
loaded in the process.  If that is not possible (another PETSc build, a complex-scalar
build), the radius is reported as unknown (None) and resumes fall back to TAO's own
initial radius.
"""
from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=1)
def _function():
    try:
        with open("/proc/self/maps") as fh:
            libs = sorted({ln.split()[-1] for ln in fh if "libpetsc" in ln and ".so" in ln})
        for path in libs:
            lib = ctypes.CDLL(path)
            fn = getattr(lib, "TaoGetCurrentTrustRegionRadius", None)
            if fn is not None:
                fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)]
                fn.restype = ctypes.c_int
                return fn
    except OSError:
        return None
    return None


def current_trust_radius(tao) -> float | None:
    """The TAO solver's current trust-region radius (transformed-parameter units), or None."""
    from ..petsc_env import import_petsc4py
    PETSc = import_petsc4py()
    if PETSc.RealType().itemsize != 8 or PETSc.ScalarType().dtype.kind != "f":
        return None
    fn = _function()
    if fn is None:
        return None
    r = ctypes.c_double(-1.0)
    if fn(ctypes.c_void_p(tao.handle), ctypes.byref(r)) != 0:
        return None
    return float(r.value)
