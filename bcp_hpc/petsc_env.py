"""Locate and import petsc4py / slepc4py.

Debian installs petsc4py under ``$PETSC_DIR/lib/python3/dist-packages`` and
only puts it on ``sys.path`` through a ``.pth`` file that reads ``PETSC_DIR``
at interpreter start-up (falling back to ``/usr/lib/petsc``, which exists only
when the ``-dev`` alternatives are installed).  This module makes the import
work without any environment variable:

* when ``PETSC_DIR`` (``SLEPC_DIR``) is set, it is respected as is (clusters
  bring their own PETSc);
* when unset, a plain ``import petsc4py`` is tried first (pip, conda and
  module installs), then Debian's layout ``/usr/lib/petscdir/petsc*/<arch>-real``
  is searched, newest version first.

``petsc4py.init(argv)`` is called once with the process's command-line
options so that every ``-prefix_option value`` reaches PETSc's options
database.
"""
from __future__ import annotations

import glob
import os
import sys

_DEBIAN_PETSC = "/usr/lib/petscdir"
_DEBIAN_SLEPC = "/usr/lib/slepcdir"
_initialised = False


def _debian_candidates(root: str, name: str) -> list[str]:
    found = sorted(glob.glob(os.path.join(root, name + "*", "*-real")), reverse=True)
    return [d for d in found if os.path.isdir(d)]


def _add_dist_packages(prefix: str) -> None:
    for sub in ("lib/python3/dist-packages",
                f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages",
                "lib"):
        path = os.path.join(prefix, sub)
        if os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)


def locate(var: str, root: str, stem: str) -> str | None:
    """Return the directory for ``var`` (``PETSC_DIR``/``SLEPC_DIR``), setting it if found."""
    value = os.environ.get(var)
    if value:
        return value
    cands = _debian_candidates(root, stem)
    if cands:
        os.environ[var] = cands[0]
        return cands[0]
    return None


def _import(modname: str, var: str, root: str, stem: str):
    try:
        return __import__(modname)
    except ImportError:
        pass
    prefix = locate(var, root, stem)
    if prefix is None:
        raise ImportError(
            f"{modname} is not importable and {var} is unset with no Debian install under {root}. "
            f"Install it (Debian: apt-get install python3-{modname}) or set {var}.")
    _add_dist_packages(prefix)
    try:
        return __import__(modname)
    except ImportError as exc:
        raise ImportError(f"{modname} not importable with {var}={prefix}: {exc}") from exc


def import_petsc4py():
    """Import and initialise petsc4py; returns the ``PETSc`` module."""
    global _initialised
    petsc4py = _import("petsc4py", "PETSC_DIR", _DEBIAN_PETSC, "petsc")
    if not _initialised:
        petsc4py.init(sys.argv)
        _initialised = True
    from petsc4py import PETSc
    return PETSc


def import_slepc4py():
    """Import and initialise slepc4py (after PETSc); returns the ``SLEPc`` module."""
    import_petsc4py()
    slepc4py = _import("slepc4py", "SLEPC_DIR", _DEBIAN_SLEPC, "slepc")
    slepc4py.init(sys.argv)
    from slepc4py import SLEPc
    return SLEPc
