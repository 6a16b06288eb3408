"""Newton by components: the steady state of a block-triangular model one component at a time.

When the tracer graph has several strongly connected components (:mod:`.blocktri`), ``F(u) = 0``
is block lower triangular as a *nonlinear* system too: component ``k``'s equations involve only
the tracers of components ``1..k``.  So the state is found exactly by solving the components in
topological order, each for its own tracers with the earlier ones fixed (spec §3.2: "solve 6
linear n x n systems ... and then Newton on DIC alone").  Against Newton on the whole system:

* each component iterates with the factor of its diagonal block at its first iterate as long as
  that contracts fast (chord steps: a component that is linear in its own tracers, such as the P
  cycle, the organic carbon pools and ALK, is factored once and converges in a solve and a
  refinement step), and refactors only when a step does not reduce its residual tenfold (Newton
  steps with Armijo backtracking: DIC's carbonate chemistry, O2's switch), instead of refactoring
  every block at every iteration of the whole system;
* each component's line search judges its own residual: the DIC residual's scale no longer hides
  the O2 residual, and a step that helps one component is not judged by another's;
* a cold start is the paper's dependency order (P first, then carbon, then oxygen), each
  component starting from its converged predecessors.

The factors of the diagonal blocks at the solution are left in the
:class:`~.blocktri.BlockTriangularSolver` for the sensitivities: a block whose values moved since it
was factored is refactored at the solution.  ``-<prefix>newton global`` keeps Newton on the whole system.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..errors import SolverError
from ..log import progress
from .blocktri import BlockTriangularSolver
from .profiling import ASSEMBLY, FACTOR, SOLVE, stage

log = logging.getLogger(__name__)
#: rebuilds of the component structure when the coupling pattern changes during a solve
MAX_RESTARTS = 3
#: a chord step (lagged factor) must reduce the component's residual norm at least this much
CHORD_CONTRACTION = 0.1
#: a component's first correction below this (relative) needs no refinement step
REFINED_STEP = 1e-8


class PatternChanged(Exception):
    """The coupling pattern of ``F_u`` changed during the solve (the components must be rebuilt)."""


class ComponentNorm:
    """2-norms of the rows of one component of a whole-state Vec (a reduction over ranks)."""

    def __init__(self, system, comp):
        self.comm = system.dgrid.comm.tompi4py()
        self.nt = system.nt
        self.comp = comp

    def __call__(self, v) -> float:
        from mpi4py import MPI
        rows = v.getArray(readonly=True).reshape(self.nt, -1)[self.comp]
        return float(np.sqrt(self.comm.allreduce(float(np.sum(rows * rows)), op=MPI.SUM)))


def solve_by_components(steady, u, lin, solver):
    """Steady state from ``u`` (modified in place) by Newton on each component in turn.

    ``lin``: the linearisation at ``u``; ``solver``: a :class:`~.blocktri.BlockTriangularSolver` for
    the same coupling whose factors may be reused (numeric refactorization), or None.  Returns
    ``(solver, iterations per component, ||F(u0)||, ||F(u)||)``; the solver holds the factors at the
    solution.  Raises :class:`~bcp_hpc.errors.SolverError` naming the component that did not
    converge."""
    for _ in range(MAX_RESTARTS + 1):
        if solver is None:
            solver = BlockTriangularSolver(steady.system, lin, steady.prefix, block_defaults=steady.factor_defaults,
                                           factor=False)
        holder = {}
        try:
            return (solver,) + _sweep(steady, u, lin, solver, holder)
        except SolverError:
            solver.destroy()
            raise
        except PatternChanged as exc:
            holder["F"].destroy()         # the residual of the interrupted sweep
            log.info("steady state '%s': the coupling pattern changed (%s); components rebuilt", steady.prefix, exc)
            solver.destroy()
            solver = None
            lin = steady.system.linearise(u)
    raise SolverError(f"steady state '{steady.prefix}': the coupling pattern kept changing during Newton by components")


def _sweep(steady, u, lin, solver, holder):
    """One pass over the components; ``holder["F"]`` is the current residual (the caller frees it when
    the pass is interrupted by a pattern change)."""
    sysm = steady.system
    names = sysm.model.tracer_names
    F = holder["F"] = sysm.residual(u)
    f0 = F.norm()
    iterations = {}
    started = time.perf_counter()
    current = True              # `lin` is the linearisation at the current u
    for k, comp in enumerate(solver.comps):
        label = ", ".join(names[a] for a in comp)
        norm = ComponentNorm(sysm, comp)
        fk = norm(F)
        converged = False
        need_factor, fresh = True, False
        for it in range(steady.max_newton):
            if need_factor:
                if not current:
                    with stage(ASSEMBLY):
                        lin = sysm.linearise(u)
                    current = True
                    if lin.pattern_changed:
                        holder["F"] = F
                        raise PatternChanged(f"at component [{label}]")
                _factor(steady, solver, k, lin, started)
                need_factor, fresh = False, True
            t0 = time.perf_counter()
            with stage(SOLVE):
                du = solver.solve_component(k, F)
            steady.timings["solve"] = steady.timings.get("solve", 0.0) + time.perf_counter() - t0
            step = norm(du) / max(norm(u), norm(du), 1e-300)     # 1 from zeros (a cold start)
            lam = 1.0
            if step <= steady.step_rtol:
                # a correction at the round-off floor: take it and stop (no merit test below the noise)
                u.axpy(-1.0, du)
                F.destroy()
                F = sysm.residual(u)
                fnew = norm(F)
            elif fresh:
                # Newton step: first the one limited box by box (positive tracers, switches), else Armijo backtracking
                limited = steady._limited_step(u, du)
                accepted = False
                if limited is not None:
                    accepted, lam, F, fnew = steady._line_search(u, limited, F, fk, lam_min=2.0 ** -3, norm=norm)
                    limited.destroy()
                if not accepted:
                    accepted, lam, F, fnew = steady._line_search(u, du, F, fk, lam_min=2.0 ** -20, norm=norm)
                # a damped step means the state is still outside Newton's region: no chord step from it
                need_factor = lam < 1.0 or limited is not None
            else:
                # chord step with the factor of an earlier iterate: kept while it contracts fast; a
                # step that does not is undone and the next iteration refactors
                accepted, lam, F, fnew = steady._line_search(u, du, F, fk, lam_min=1.0, norm=norm)
                if not accepted or fnew > CHORD_CONTRACTION * fk:
                    need_factor = True
                if not accepted:
                    du.destroy()
                    continue
            du.destroy()
            current = False
            fresh = False
            fk = fnew
            iterations[label] = it + 1
            progress(log, started, "steady state '%s': [%s] iteration %d, ||F_k|| = %.3e, ||du_k||/||u_k|| = %.3e%s, "
                     "%.0f s", steady.prefix, label, it + 1, fk, step, "" if lam == 1.0 else f", step {lam:.3g}",
                     time.perf_counter() - started)
            # a first step that moved the component (e.g. a linear one solved from its guess) is
            # refined once: its tiny residual does not bound the error of a near-singular block
            refined = it > 0 or step <= REFINED_STEP
            if (refined and fk <= steady.atol + steady.rtol * f0) or step <= steady.step_rtol:
                converged = True
                break
        if not converged:
            F.destroy()
            raise SolverError(f"Newton did not converge for component [{label}] in {steady.max_newton} iterations "
                              f"(||F_k|| = {fk:.3e}, initial ||F|| {f0:.3e})")
    # factors at the solution for the sensitivities: the blocks whose values moved since they were
    # factored (components whose equations are nonlinear in their own tracers) are refactored
    if not current:
        with stage(ASSEMBLY):
            lin = sysm.linearise(u)
        if lin.pattern_changed:
            holder["F"] = F
            raise PatternChanged("at the solution")
    for k in range(len(solver.comps)):
        if solver.block_changed(k, lin.matrix):
            _factor(steady, solver, k, lin, started)
    solver.J = lin.matrix
    fend = F.norm()
    F.destroy()
    return iterations, f0, fend


def _factor(steady, solver, k, lin, started):
    t0 = time.perf_counter()
    with stage(FACTOR):
        solver.factor_component(k, lin.matrix)
    steady.timings["factor"] = steady.timings.get("factor", 0.0) + time.perf_counter() - t0
    solver.report(k, started, t0, "factored")
