"""Block-triangular solves of ``F_u`` along the tracer dependency graph.

The Jacobian's block pattern (which tracer's equation depends on which tracer) is a directed
graph; its strongly connected components, in topological order, make ``F_u`` block lower
triangular.  The joint P-C-O model (spec §3.2) has the components {DIP, POP, DOP_s}, then POC,
DOC_s, PIC, DOC_l, DOC_r, ALK, DIC and O2 each on its own: instead of one LU of an 11n system,
one LU of the 3n P block and eight LUs of single-tracer n x n blocks (spec §3.2: "a
re-implementation may solve 6 linear n x n systems ... and then Newton on DIC alone"), with
the same solution.  Nothing here is specific to a model: any declared model whose tracers do
not all feed back on one another gets this path (``-<prefix>solver blocktri``, and chosen
automatically on every path when there are several components; ``-<prefix>blocktri 0`` keeps the
monolithic factorization).

Forward solves substitute in topological order, ``x_k = J_kk^-1 (b_k - sum_{j<k} J_kj x_j)``;
transposed (adjoint) solves in reverse order with ``J^T``.  Each diagonal block is a
:class:`~.linear.LinearSolver` under the options prefix ``<prefix>block_`` (MUMPS by default),
so ``-steady_block_pc_factor_mat_solver_type superlu_dist`` etc. tune all of them.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..log import progress
from .base import Solver
from .linear import LinearSolver, PETSc

log = logging.getLogger(__name__)


def strongly_connected_components(present: np.ndarray) -> list:
    """Components of the graph ``a -> b`` for ``present[a, b]`` (equation a uses tracer b), in an
    order where every component depends only on earlier ones (Tarjan's algorithm)."""
    n = present.shape[0]
    index = [None] * n
    low = [0] * n
    on_stack = [False] * n
    stack, comps = [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack[v] = True
        for w in range(n):
            if w == v or not present[v, w]:
                continue
            if index[w] is None:
                visit(w)
                low[v] = min(low[v], low[w])
            elif on_stack[w]:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack[w] = False
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    for v in range(n):
        if index[v] is None:
            visit(v)
    return comps      # Tarjan emits a component after everything it depends on


class BlockTriangularSolver(Solver):
    """``lin``: the :class:`~bcp_hpc.models.system.Linearisation` of the state; ``block_defaults``:
    options of every block's :class:`~.linear.LinearSolver` (under ``<prefix>block_``)."""

    def __init__(self, system, lin, prefix: str, block_defaults: dict | None = None, factor: bool = True):
        """``factor=False``: the blocks are factored one at a time by :meth:`factor_component`
        (Newton by components, :mod:`.components`)."""
        self.system = system
        self.prefix = prefix
        self.comps = strongly_connected_components(lin.coupling)
        J = lin.matrix
        self.nt = system.nt
        self.nloc = system.nloc
        rstart, _ = J.getOwnershipRange()
        comm = J.getComm()
        self.iss = []
        for comp in self.comps:
            idx = np.concatenate([rstart + a * self.nloc + np.arange(self.nloc, dtype=np.int64) for a in comp])
            self.iss.append(PETSc.IS().createGeneral(idx.astype(PETSc.IntType), comm=comm))
        self.J = J
        self.subs = [J.createSubMatrix(isk, isk) for isk in self.iss]
        self.solvers = [LinearSolver(A, prefix + "block_", extra_defaults=block_defaults) for A in self.subs]
        #: per component: factorizations so far and their seconds
        self.factorizations = [0] * len(self.comps)
        self.factor_seconds = [0.0] * len(self.comps)
        if factor:
            started = time.perf_counter()
            for k in range(len(self.comps)):
                t0 = time.perf_counter()
                self.factor_component(k, J)
                self.report(k, started, t0, "factored")

    def factor_component(self, k: int, J):
        """Factor the diagonal block of component ``k`` of ``J`` (numeric refactorization when it was
        factored before: the symbolic analysis is kept); ``J`` becomes the matrix of the couplings."""
        t0 = time.perf_counter()
        self.J = J
        self.subs[k] = J.createSubMatrix(self.iss[k], self.iss[k], submat=self.subs[k])
        # refactor() also on the first factorization: it copies the new values into a METIS-ordered copy
        self.solvers[k].refactor(self.subs[k])
        self.factorizations[k] += 1
        self.factor_seconds[k] += time.perf_counter() - t0

    def component_stats(self) -> list:
        """Per component: tracers, factorizations, their seconds (this rank's) and MUMPS' memory of the last
        one (MB, largest process and all processes)."""
        names = self.system.model.tracer_names
        out = []
        for k, comp in enumerate(self.comps):
            mem = self.solvers[k].mumps_memory_mb()
            out.append({"tracers": [names[a] for a in comp], "factorizations": self.factorizations[k],
                        "factor_seconds": self.factor_seconds[k],
                        "mumps_mb_max_process": None if mem is None else mem[0],
                        "mumps_mb_total": None if mem is None else mem[1]})
        return out

    def block_changed(self, k: int, J) -> bool:
        """Whether component ``k``'s diagonal block of ``J`` differs from the one last factored (same on
        every rank).  Values computed from the same inputs are identical, so any difference counts."""
        new = J.createSubMatrix(self.iss[k], self.iss[k])
        a = new.getValuesCSR()[2]
        b = self.subs[k].getValuesCSR()[2]
        local = a.shape != b.shape or not np.array_equal(a, b)
        new.destroy()
        from mpi4py import MPI
        return bool(J.getComm().tompi4py().allreduce(local, op=MPI.LOR))

    def solve_component(self, k: int, b):
        """``J_kk x_k = b_k`` for component ``k`` alone: ``b`` and the result are whole-state Vecs, the
        result zero outside the component's tracers."""
        comp = self.comps[k]
        rhs = self.subs[k].createVecLeft()
        rhs.getArray().reshape(len(comp), self.nloc)[:] = b.getArray(readonly=True).reshape(self.nt, self.nloc)[comp]
        xk = self.solvers[k].solve(rhs)
        out = self.J.createVecRight()
        out.set(0.0)
        out.getArray().reshape(self.nt, self.nloc)[comp] = xk.getArray(readonly=True).reshape(len(comp), self.nloc)
        xk.destroy()
        rhs.destroy()
        return out

    def describe(self) -> str:
        names = self.system.model.tracer_names
        return "block-triangular: " + " -> ".join("[" + ", ".join(names[a] for a in c) + "]" for c in self.comps)

    def report(self, k, started, t0, what):
        """Progress line: component ``k`` was ``what`` (factored, refactored) in the time since ``t0``."""
        names = self.system.model.tracer_names
        progress(log, started, "block-triangular: %s component %d/%d [%s] in %.1f s", what, k + 1, len(self.comps),
                 ", ".join(names[a] for a in self.comps[k]), time.perf_counter() - t0)

    def refactor(self, lin):
        J = self.J = getattr(lin, "matrix", lin)
        started = time.perf_counter()
        seconds = []
        for k in range(len(self.comps)):
            t0 = time.perf_counter()
            self.factor_component(k, J)
            seconds.append(time.perf_counter() - t0)
        # one line per refactorization (a Newton iteration), naming the slowest component
        names = self.system.model.tracer_names
        k = int(np.argmax(seconds))
        progress(log, started, "block-triangular: refactored %d components in %.1f s (slowest [%s] %.1f s)",
                 len(seconds), sum(seconds), ", ".join(names[a] for a in self.comps[k]), seconds[k])

    def solve(self, b, x=None, transpose: bool = False):
        J = self.J
        bl = b.getArray(readonly=True).reshape(self.nt, self.nloc)
        out = J.createVecRight() if x is None else x
        out.set(0.0)
        tmp = J.createVecLeft()
        order = range(len(self.comps)) if not transpose else range(len(self.comps) - 1, -1, -1)
        first = True
        for k in order:
            comp = self.comps[k]
            rhs = self.subs[k].createVecLeft()
            r = rhs.getArray().reshape(len(comp), self.nloc)
            r[:] = bl[comp]
            if not first:
                # coupling to the components solved so far (the rest of `out` is still zero)
                (J.multTranspose if transpose else J.mult)(out, tmp)
                r -= tmp.getArray(readonly=True).reshape(self.nt, self.nloc)[comp]
            del r
            xk = self.solvers[k].solve(rhs, transpose=transpose)
            ol = out.getArray().reshape(self.nt, self.nloc)
            ol[comp] = xk.getArray(readonly=True).reshape(len(comp), self.nloc)
            del ol
            xk.destroy()
            rhs.destroy()
            first = False
        tmp.destroy()
        return out

    def solve_many(self, B_cols):
        """Several right-hand sides: per component, one multi-RHS solve (``MatMatSolve``) for all."""
        if len(B_cols) <= 1:
            return [self.solve(b) for b in B_cols]
        J = self.J
        outs = [J.createVecRight() for _ in B_cols]
        for o in outs:
            o.set(0.0)
        tmp = J.createVecLeft()
        for k, comp in enumerate(self.comps):
            rhs = []
            for b, o in zip(B_cols, outs):
                r = self.subs[k].createVecLeft()
                ra = r.getArray().reshape(len(comp), self.nloc)
                ra[:] = b.getArray(readonly=True).reshape(self.nt, self.nloc)[comp]
                if k > 0:
                    J.mult(o, tmp)
                    ra -= tmp.getArray(readonly=True).reshape(self.nt, self.nloc)[comp]
                del ra
                rhs.append(r)
            xs = self.solvers[k].solve_many(rhs)
            for o, xk, r in zip(outs, xs, rhs):
                ol = o.getArray().reshape(self.nt, self.nloc)
                ol[comp] = xk.getArray(readonly=True).reshape(len(comp), self.nloc)
                del ol
                xk.destroy()
                r.destroy()
        tmp.destroy()
        return outs

    def destroy(self):
        for s in self.solvers:
            s.destroy()
        for o in self.subs + self.iss:
            o.destroy()
        self.solvers, self.subs, self.iss = [], [], []
