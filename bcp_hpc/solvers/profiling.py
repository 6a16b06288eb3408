"""PETSc log stages for ``-log_view``: assembly, factorization, solves, sensitivities, objective.

``with stage("bcp: factor"):`` pushes a named PETSc log stage (registered once per name)
so ``-log_view`` reports time, flops and messages per phase of the package, separate from
PETSc's own events inside them.  Stages nest; names start with ``bcp:``.
"""
from __future__ import annotations

import contextlib

from ..petsc_env import import_petsc4py

PETSc = import_petsc4py()
_STAGES = {}

ASSEMBLY = "bcp: assembly"
FACTOR = "bcp: factorization"
SOLVE = "bcp: solve"
SENSITIVITIES = "bcp: sensitivities"
OBJECTIVE = "bcp: objective"


@contextlib.contextmanager
def stage(name: str):
    st = _STAGES.get(name)
    if st is None:
        st = _STAGES[name] = PETSc.Log.Stage(name)
    st.push()
    try:
        yield st
    finally:
        st.pop()
