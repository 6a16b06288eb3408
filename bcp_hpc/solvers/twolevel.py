"""Iterative steady-state path for grids whose factors do not fit: two-level preconditioned GMRES.

Preconditioner (one application, multiplicative two-level cycle):

1. smoother: a PETSc ``fieldsplit`` over the model's tracers (block Gauss-Seidel, symmetric by
   default): particle tracers exactly by block-Jacobi LU (their operator is column-local and
   every water column lives on one rank), fast-decaying dissolved pools (``Tracer.eliminate``)
   by ILU, transported tracers by hypre BoomerAMG (HMIS coarsening, ext+i interpolation);
2. coarse correction: the Galerkin operator ``J_c = P^T J P`` of piecewise-constant aggregates
   (4 neighbouring columns along the rank's Hilbert-ordered column sequence x 2 layers, one
   field; more columns when the coarse system would exceed 400,000 unknowns; ``-<prefix>coarse_columns``, ``-<prefix>coarse_layers``), factored with MUMPS
   (``-<prefix>coarse_*`` options, e.g. ``-<prefix>coarse_mat_mumps_icntl_22 1`` out of core);
3. the smoother again.

The smoother alone fails on the coupled P cycle (uptake -> organic P -> remineralisation ->
DIP, anchored only by the 1 Myr restoring): its slow modes are large-scale and the coarse
solve removes them.  Aggregates never cross ranks, so ``P`` has no communication; ``J_c``
is 8x smaller than ``J``.  Every option is under the prefix: ``-<prefix>ksp_*`` (outer GMRES,
right-preconditioned, restart 30: a long restart costs more memory than the fine-grid
operator and converged no faster here), ``-<prefix>smooth_*`` (the fieldsplit),
``-<prefix>coarse_*`` (the coarse LU).
Stopping rule: ``||J x - b|| <= 1e-11 ||b||`` (``-<prefix>ksp_rtol``).
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import SolverError
from ..petsc_env import import_petsc4py
from .base import Solver
from .linear import LinearSolver
from .options import OptionsScope, get_option, ksp_reason

PETSc = import_petsc4py()
log = logging.getLogger(__name__)
COLUMNS_PER_AGGREGATE = 4
LAYERS_PER_AGGREGATE = 2
#: the aggregates grow (columns x2) until the coarse system has at most this many unknowns, so its
#: LU stays a few GB (1 deg x 48 layers: 8 columns per aggregate, 380,188 coarse unknowns)
COARSE_MAX_UNKNOWNS = 400_000


class TwoLevelSolver(Solver):
    #: no transposed solve (the adjoint Hessian falls back to forward second-order sensitivities)
    supports_transpose = False

    def __init__(self, system, lin, prefix: str, rtol: float = 1e-11, max_it: int = 1000):
        self.system = system
        self.prefix = prefix
        J = self.A = getattr(lin, "matrix", lin)
        # the outer GMRES: right-preconditioned (the cycle is a fixed linear operator), short restart:
        # the Krylov basis is the largest memory item at fine resolution (30 vectors of the full state)
        self.options = OptionsScope(prefix, {"ksp_type": "gmres", "ksp_pc_side": "right", "ksp_gmres_restart": "30"})
        self.comm = J.getComm()
        self.rtol, self.max_it = rtol, max_it
        self.total_iterations = 0
        self.solves = 0
        self._build_prolongation()
        self.coarse = None
        self.Jc = None
        self.ksp = None
        self.smoother = None
        self.setup()

    # ------------------------------------------------------------------ aggregation
    def _build_prolongation(self):
        sysm = self.system
        g = sysm.grid
        lay = sysm.dgrid.layout
        nt = sysm.nt
        loc = sysm.dgrid.local_natural
        k = g.box_k[loc]
        nlay = self.layers_per_aggregate = get_option(self.prefix, "coarse_layers", LAYERS_PER_AGGREGATE)
        ncol = COLUMNS_PER_AGGREGATE
        while nt * g.nwet / (ncol * nlay) > COARSE_MAX_UNKNOWNS:
            ncol *= 2
        ncol = self.columns_per_aggregate = get_option(self.prefix, "coarse_columns", ncol)
        col_pos = np.cumsum(k == 0) - 1                       # rank-local column number of each box
        key = (col_pos // ncol) * (g.shape[2] // nlay + 1) + k // nlay
        _, agg = np.unique(key, return_inverse=True)           # local aggregate of each box
        nagg = int(agg.max()) + 1 if agg.size else 0
        mpi = self.comm.tompi4py()
        counts = mpi.allgather(nagg)
        start = int(sum(counts[: mpi.rank]))
        self.nagg_local, self.nagg = nagg, int(sum(counts))
        nloc = sysm.nloc
        r0 = nt * int(lay.box_bounds[lay.rank])
        rows, cols = [], []
        for f in range(nt):
            rows.append(r0 + f * nloc + np.arange(nloc))
            cols.append(nt * start + f * nagg + agg)
        rows = np.concatenate(rows)
        order = np.argsort(rows, kind="stable")
        cols = np.concatenate(cols)[order].astype(PETSc.IntType)
        indptr = np.arange(rows.size + 1, dtype=PETSc.IntType)
        P = PETSc.Mat().createAIJ(((nt * nloc, None), (nt * nagg, None)), csr=(indptr, cols, np.ones(rows.size)),
                                  comm=self.comm)
        P.assemble()
        self.P = P

    # ------------------------------------------------------------------ setup
    def _field_is(self):
        sysm = self.system
        lay = sysm.dgrid.layout
        nloc = sysm.nloc
        r0 = sysm.nt * int(lay.box_bounds[lay.rank])
        return [(t.name, PETSc.IS().createStride(nloc, first=r0 + f * nloc, step=1, comm=self.comm))
                for f, t in enumerate(sysm.model.tracers)]

    def setup(self):
        sysm = self.system
        sp = self.prefix + "smooth_"
        defaults = {"pc_fieldsplit_type": "symmetric_multiplicative"}
        for t in sysm.model.tracers:
            if t.transport == "sinking":
                defaults.update({f"fieldsplit_{t.name}_pc_type": "bjacobi", f"fieldsplit_{t.name}_sub_pc_type": "lu"})
            elif t.eliminate:
                defaults.update({f"fieldsplit_{t.name}_pc_type": "bjacobi", f"fieldsplit_{t.name}_sub_pc_type": "ilu"})
            else:
                # BoomerAMG with HMIS coarsening and ext+i interpolation (at most 4 weights per row): same
                # outer iterations, 28-30 % less time than hypre's defaults at 2 deg x 48 (docs/solvers.md)
                defaults.update({f"fieldsplit_{t.name}_pc_type": "hypre",
                                 f"fieldsplit_{t.name}_pc_hypre_boomeramg_coarsen_type": "HMIS",
                                 f"fieldsplit_{t.name}_pc_hypre_boomeramg_interp_type": "ext+i",
                                 f"fieldsplit_{t.name}_pc_hypre_boomeramg_P_max": "4"})
        if self.smoother is None:
            self.smoother = PETSc.PC().create(comm=self.comm)
            self.smoother.setOptionsPrefix(sp)
            self.smoother.setType("fieldsplit")
            for name, iset in self._field_is():
                self.smoother.setFieldSplitIS((name, iset))
        self.smoother.setOperators(self.A)
        with OptionsScope(sp, defaults).inserted():       # the splits read theirs at setUp
            self.smoother.setFromOptions()
            self.smoother.setUp()
        # Galerkin coarse operator and its LU.  On several ranks PETSc's "allatonce" product: its
        # symbolic phase kept 25 instead of 234 MB resident over 2 ranks at 2 deg x 48 (docs/solvers.md);
        # the product reads the unprefixed -matptap_via, so it is set for this call only, and a user's
        # value wins
        ptap = OptionsScope("", {"matptap_via": "allatonce"} if self.comm.getSize() > 1 else {})
        with ptap.inserted():
            if self.Jc is None:
                self.Jc = self.A.ptap(self.P)
            else:
                self.A.ptap(self.P, result=self.Jc)
        if self.coarse is None:
            self.coarse = LinearSolver(self.Jc, self.prefix + "coarse_")
            self.coarse.setup()
        else:
            self.coarse.refactor(self.Jc)
        if getattr(self, "_r", None) is None:          # work vectors: same layout at every refactor
            self._r = self.A.createVecLeft()
            self._t = self.A.createVecRight()
            self._rc = self.Jc.createVecLeft()
            self._xc = self.Jc.createVecRight()
        if self.ksp is None:
            self.ksp = PETSc.KSP().create(comm=self.comm)
            self.ksp.setOptionsPrefix(self.prefix)
            self.ksp.setTolerances(rtol=self.rtol, atol=0.0, max_it=self.max_it)
            pc = self.ksp.getPC()
            pc.setType("python")
            pc.setPythonContext(_Cycle(self))
            with self.options.inserted():
                self.ksp.setFromOptions()
        self.ksp.setOperators(self.A)

    def refactor(self, lin=None):
        if lin is not None:
            self.A = getattr(lin, "matrix", lin)
        self.setup()

    # ------------------------------------------------------------------ cycle
    def apply(self, b, x):
        """x = B b, one two-level cycle (smooth, coarse correction, smooth)."""
        A, r, t = self.A, self._r, self._t
        self.smoother.apply(b, x)
        A.mult(x, r)
        r.aypx(-1.0, b)                       # r = b - A x
        self.P.multTranspose(r, self._rc)
        self.coarse.solve(self._rc, self._xc)
        self.P.multAdd(self._xc, x, x)        # x += P xc
        A.mult(x, r)
        r.aypx(-1.0, b)
        self.smoother.apply(r, t)
        x.axpy(1.0, t)

    # ------------------------------------------------------------------ solves
    def solve(self, b, x=None, transpose: bool = False):
        if transpose:
            raise SolverError(f"{self.describe()}: no transposed solve")
        if x is None:
            x = self.A.createVecRight()
        x.set(0.0)
        self.ksp.solve(b, x)
        its = self.ksp.getIterationNumber()
        self.total_iterations += its
        self.solves += 1
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            r = self.A.createVecLeft()
            self.A.mult(x, r)
            r.aypx(-1.0, b)
            rel = r.norm() / max(b.norm(), 1e-300)
            r.destroy()
            if rel > 1e-7:
                raise SolverError(f"two-level GMRES '{self.prefix}' failed ({ksp_reason(reason)}, {its} iterations, "
                                  f"relative residual {rel:.2e})")
            log.debug("two-level GMRES stopped at round-off (relative residual %.2e)", rel)
        log.debug("two-level GMRES: %d iterations", its)
        return x

    def iterations(self) -> int:
        return self.ksp.getIterationNumber()

    def describe(self) -> str:
        return (f"two-level GMRES: fieldsplit smoother, Galerkin coarse LU of {self.Jc.getSize()[0]} unknowns "
                f"({self.columns_per_aggregate} columns x {self.layers_per_aggregate} layers per aggregate)")

    def destroy(self):
        for name in ("ksp", "smoother", "P", "Jc", "_r", "_t", "_rc", "_xc"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.destroy()
                setattr(self, name, None)
        if self.coarse is not None:
            self.coarse.destroy()
            self.coarse = None


class _Cycle:
    def __init__(self, solver):
        self.solver = solver

    def apply(self, pc, b, x):
        self.solver.apply(b, x)
