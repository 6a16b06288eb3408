"""Steady states ``F(u) = 0`` of a :class:`~bcp_hpc.models.system.ModelSystem` and their sensitivities.

Newton's method on ``F_u du = -F``; a linear model converges in one step (one
factorization).  The factorization of ``F_u`` at the solution is kept and reused for the
first-order sensitivities ``F_u u_i = -F_i`` (one right-hand side per optimised
parameter) and the second-order ones
``F_u u_ij = -(F_ij + F_ui u_j + F_uj u_i + F_uu(u_i, u_j))`` (one per pair ``i <= j``),
all solved together with ``MatMatSolve`` on the factor (spec §2.5).

Stopping rule: ``||F||_2 <= atol + rtol ||F(u0)||_2`` (rtol 1e-12; for the steady-state
residual in mmol m-3 s-1 this is a relative residual *per unit time*) or a Newton step
``||du|| <= 1e-11 ||u||`` (the round-off floor of a near-singular system such as the P model,
whose only anchor is the 1/(1 Myr) restoring).  A linear model factors once; later steps
are iterative refinement with the same factors, unless the solver verified the true residual of
its first solve below 1e-8 (the structured path does).
Solver options live under the prefix (default ``steady_``); ``-<prefix>solver
auto|direct|structured|ooc|iterative`` picks the path (:mod:`.choice`; default direct, or structured
with ``-<prefix>structured``).
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..errors import SolverError, StateError
from ..log import progress
from .linear import LinearSolver
from .options import get_option
from .profiling import ASSEMBLY, FACTOR, SENSITIVITIES, SOLVE, stage

log = logging.getLogger(__name__)
#: steady-state prefix -> what its linear solver is (for the run's record, ``run_info.json``)
SOLVER_PATHS: dict = {}
#: relative tolerance of the refinement solves of a linear model on a Krylov path
REFINE_RTOL = 1e-3
#: a linear model is solved after one step when the solver verified its true relative residual below this
VERIFIED_RTOL = 1e-8
#: boxes within this many widths of a declared switch's centre take limited Newton steps
SWITCH_ZONE = 1.0
#: a box near a switch covers at most this fraction of its distance to the centre in one step (or one
#: width): it does not cross the centre from afar (docs/solvers.md: the rules compared)
SWITCH_APPROACH = 0.9


class SteadyState:
    def __init__(self, system, prefix: str = "steady_", rtol: float = 1e-12, atol: float = 0.0, max_newton: int = 100,
                 step_rtol: float = 1e-11, structured: bool | None = None):
        self.system = system
        from .choice import choose
        if structured is None:
            structured = get_option(prefix, "structured")
        requested = get_option(prefix, "solver", "structured" if structured else "direct")
        self.path = choose(system.nt * system.dgrid.grid.nwet, requested)
        from .structured import StructuredSolver
        self.structured = self.path == "structured" and StructuredSolver.applicable(system)
        if self.path == "iterative":
            # GMRES stops at 1e-11 of ||b||; the Newton step after one refinement is ~1e-10 of ||u||,
            # the accuracy the Krylov tolerance allows: accept it instead of a third solve
            step_rtol = max(step_rtol, 1e-9)
        elif self.structured:
            # its GMRES stops at 1e-11 of ||b||, so the first refinement step is ~1e-10 of ||u||:
            # accept that instead of a third solve (the direct path refines to the same level)
            step_rtol = max(step_rtol, 1e-9)
        # MUMPS out of core (factors on disk) on the ooc path, for the monolithic and the block factors
        self.factor_defaults = {"mat_mumps_icntl_22": "1"} if self.path == "ooc" else None
        self.prefix = prefix
        self.step_rtol = step_rtol
        self.rtol, self.atol, self.max_newton = rtol, atol, max_newton
        self.solver = None
        self.u = None
        self.timings = {}
        self.newton_iterations = 0
        self._announced = False       # the block-triangular path's replacement of the requested path was logged
        #: Newton by components: iterations per component ("DIP, POP, DOPs" -> count)
        self.component_iterations = {}

    def _factor(self, u):
        t0 = time.perf_counter()
        with stage(ASSEMBLY):
            lin = self.system.linearise(u)
        with stage(FACTOR):
            self._factor_matrix(lin)
        self.timings["factor"] = self.timings.get("factor", 0.0) + time.perf_counter() - t0

    def _factor_matrix(self, lin):
        if self.solver is not None and not lin.pattern_changed:
            self.solver.refactor(lin)
            return
        self._choose_solver(lin)
        SOLVER_PATHS[self.prefix] = self.solver.describe()

    def _choose_solver(self, lin):
        if self.solver is not None:
            self.solver.destroy()
        if self._block_triangular(lin.coupling):
            from .blocktri import BlockTriangularSolver
            self.solver = BlockTriangularSolver(self.system, lin, self.prefix, block_defaults=self.factor_defaults)
            log.info("steady state '%s': %s", self.prefix, self.solver.describe())
        elif self.path == "iterative":
            from .twolevel import TwoLevelSolver
            self.solver = TwoLevelSolver(self.system, lin, self.prefix)
        elif self.structured:
            from .structured import StructuredSolver
            self.solver = StructuredSolver(self.system, lin, self.prefix)
        else:
            self.solver = LinearSolver(lin.matrix, self.prefix, extra_defaults=self.factor_defaults)
            self.solver.setup()

    def _block_triangular(self, coupling) -> bool:
        """Use :mod:`.blocktri` when the tracer graph has several components, whatever the path
        (``-<prefix>blocktri 0`` turns it off): its blocks are single tracers or small cycles whose
        LUs are far smaller than the coupled system's, and the iterative and structured paths are
        built for the P model's one cycle.  With ``ooc`` the blocks factor out of core."""
        from .blocktri import strongly_connected_components
        if not get_option(self.prefix, "blocktri"):
            return False
        if len(strongly_connected_components(coupling)) < 2:
            return False
        if self.path not in ("direct", "structured", "blocktri") and not self._announced:
            self._announced = True
            if self.path == "ooc":
                log.info("steady state '%s': the tracer graph has several components; block-triangular path, "
                         "its blocks factored out of core", self.prefix)
            else:
                log.info("steady state '%s': the tracer graph has several components; the block-triangular "
                         "path replaces '%s'", self.prefix, self.path)
        return True

    def solve(self, u0=None):
        """Newton iterations from ``u0`` (zeros by default); returns the state Vec (kept as ``self.u``).

        When Newton fails (:class:`~bcp_hpc.errors.SolverError`), the previous state ``self.u`` and a
        factorization at it are kept, so that its sensitivities stay valid for the caller."""
        try:
            return self._solve(u0)
        except SolverError:
            if self.u is not None:
                self._factor(self.u)
            raise

    def _solve(self, u0):
        sysm = self.system
        u = u0.copy() if u0 is not None else self.initial_guess()
        if get_option(self.prefix, "newton") != "global" and self._block_triangular(sysm.coupling(u)):
            with stage(ASSEMBLY):
                lin = sysm.linearise(u)
            return self._solve_by_components(u, lin)
        F = sysm.residual(u)
        f0 = F.norm()
        fk = f0
        self.newton_iterations = 0
        linear = sysm.is_linear(u)
        converged = False
        started = time.perf_counter()
        for it in range(self.max_newton):
            if not linear or it == 0:
                self._factor(u)     # a linear model keeps its one factorization (later steps refine)
            t0 = time.perf_counter()
            with stage(SOLVE):
                if linear and it > 0 and self.solver.accepts_rtol:
                    # iterative refinement of a linear model: the correction is ~1e-10 of u and only
                    # its size decides convergence, so a Krylov path solves it to REFINE_RTOL only
                    du = self.solver.solve(F, rtol=REFINE_RTOL)
                else:
                    du = self.solver.solve(F)
            self.timings["solve"] = self.timings.get("solve", 0.0) + time.perf_counter() - t0
            lam = 1.0
            if linear:
                u.axpy(-1.0, du)
                F.destroy()
                F = sysm.residual(u)
                fnew = F.norm()
            else:
                # first the step limited box by box (positive tracers, switches), if it differs and
                # decreases ||F||; else the Newton step with Armijo backtracking (spec §3.6)
                limited = self._limited_step(u, du)
                accepted = False
                if limited is not None:
                    accepted, lam, F, fnew = self._line_search(u, limited, F, fk, lam_min=2.0 ** -3)
                    limited.destroy()
                if not accepted:
                    accepted, lam, F, fnew = self._line_search(u, du, F, fk, lam_min=2.0 ** -20)
                if lam < 1.0:
                    log.info("newton %d: line search took lam = %.3g", it + 1, lam)
            # convergence is judged on the full Newton correction, not the damped step
            step = du.norm() / max(u.norm(), 1e-300)
            du.destroy()
            fk = fnew
            self.newton_iterations = it + 1
            progress(log, started, "steady state '%s': newton %d, ||F|| = %.3e (initial %.3e), ||du||/||u|| = %.3e, "
                     "%.0f s", self.prefix, it + 1, fk, f0, step, time.perf_counter() - started)
            if fk <= self.atol + self.rtol * f0 or step <= self.step_rtol:
                converged = True
                break
            verified = self.solver.verified_residual
            if linear and it == 0 and verified is not None and verified <= VERIFIED_RTOL:
                # the solver checked ||F + F_u du|| <= 1e-8 ||F|| itself (structured path: the true
                # residual, at the round-off floor of the near-singular P system); a refinement
                # step could not go below that floor
                log.debug("newton 1: linear model, solver-verified relative residual %.2e", verified)
                converged = True
                break
        if not converged:
            raise SolverError(f"Newton did not converge in {self.max_newton} iterations "
                              f"(||F|| = {fk:.3e}, initial {f0:.3e})")
        self.residual_norm = fk
        self.initial_residual_norm = f0
        F.destroy()
        # factorization at the solution for the sensitivities (already there for a linear model)
        if not linear:
            self._factor(u)
        if self.u is not None:
            self.u.destroy()
        self.u = u
        return u

    def _solve_by_components(self, u, lin):
        """Newton on each component of the block-triangular structure in turn (:mod:`.components`)."""
        from .blocktri import BlockTriangularSolver
        from .components import solve_by_components
        reuse = self.solver if (isinstance(self.solver, BlockTriangularSolver) and not lin.pattern_changed) else None
        if reuse is None and self.solver is not None:
            self.solver.destroy()
        self.solver = None
        try:
            self.solver, iterations, f0, fend = solve_by_components(self, u, lin, reuse)
        except SolverError:
            u.destroy()
            raise
        SOLVER_PATHS[self.prefix] = self.solver.describe() + " (Newton by components)"
        log.debug("steady state '%s': %s", self.prefix, self.solver.describe())
        self.component_iterations = iterations
        self.newton_iterations = max(iterations.values())
        self.residual_norm, self.initial_residual_norm = fend, f0
        if self.u is not None:
            self.u.destroy()
        self.u = u
        return u

    def _line_search(self, u, d, F, fk, lam_min, norm=None):
        """``u <- u - lam d`` with the largest ``lam = 1, 1/2, ...`` >= ``lam_min`` that satisfies
        ``||F(u - lam d)|| < (1 - 1e-4 lam) ||F(u)||``; if none does, the smallest step is kept when
        ``lam_min`` is the plain search's floor, otherwise ``u`` is restored.  ``norm``: the merit
        function's norm of a residual Vec (default its 2-norm; one component's rows for Newton by
        components).  Returns (accepted, lam, F, ||F||)."""
        lam = 1.0
        u.axpy(-1.0, d)
        Fn, fnew = self._residual_or_none(u, norm)
        while not fnew < (1.0 - 1e-4 * lam) * fk and lam > lam_min:
            u.axpy(0.5 * lam, d)
            lam *= 0.5
            if Fn is not None:
                Fn.destroy()
            Fn, fnew = self._residual_or_none(u, norm)
        ok = fnew < (1.0 - 1e-4 * lam) * fk
        if Fn is None or (not ok and lam_min > 2.0 ** -20):
            u.axpy(lam, d)                 # restore: the caller tries another direction
            if Fn is not None:
                Fn.destroy()
            return False, lam, F, fk
        F.destroy()
        return True, lam, Fn, fnew

    def _residual_or_none(self, u, norm=None):
        """``(F(u), ||F(u)||)``, or ``(None, inf)`` where the local terms cannot be evaluated (a trial point
        too far along the Newton direction): the line search then shortens the step."""
        try:
            F = self.system.residual(u)
        except StateError as exc:
            log.debug("line search: %s", exc)
            return None, float("inf")
        return F, (F.norm() if norm is None else norm(F))

    def _limited_step(self, u, du):
        """The Newton step shortened box by box where its linearisation cannot be trusted; None if no
        box needs it (then the caller takes the plain step).

        * tracers declared ``positive``: a positive value falls at most to a tenth of itself;
        * tracers declared with a ``switch`` ``(centre, width)``: a box within ``SWITCH_ZONE`` widths
          of the centre, or whose step would end there or cross it, moves at most
          ``max(width, SWITCH_APPROACH * |u - centre|)``.

        A saturating switch such as O2's respiration ``0.5 + 0.5 tanh(O2 - 5)`` is nearly flat a few
        widths away from its centre and steep at it.  Where it is flat, the linearisation does not
        see it, so the full Newton step sends boxes from O2 ~ 200 to large negative values, and the
        line search then damps every box for the sake of a few.  Limited this way, a box approaches
        the centre in one step but crosses it only from within a width (docs/solvers.md: the
        factorizations this saves)."""
        tracers = self.system.model.tracers
        limited = [a for a, t in enumerate(tracers) if t.positive or t.switch is not None]
        if not limited:
            return None
        ua = u.getArray(readonly=True).reshape(self.system.nt, -1)
        d = du.copy()
        da = d.getArray().reshape(self.system.nt, -1)
        changed = 0
        for a in limited:
            x, step = ua[a], da[a]
            cut = np.zeros(x.shape, dtype=bool)
            if tracers[a].positive:
                limit = 0.9 * x
                cut = (x > 0) & (step > limit)
                step[cut] = limit[cut]
            if tracers[a].switch is not None:
                centre, width = tracers[a].switch
                before, after = x - centre, x - step - centre
                bound = np.maximum(width, SWITCH_APPROACH * np.abs(before))
                near = ((np.abs(before) < SWITCH_ZONE * width) | (np.abs(after) < SWITCH_ZONE * width)
                        | (before * after < 0))
                far = near & (np.abs(step) > bound)
                step[far] = np.copysign(bound[far], step[far])
                cut |= far
            changed += int(cut.sum())
        del da
        from mpi4py import MPI
        if self.system.dgrid.comm.tompi4py().allreduce(changed, op=MPI.SUM) == 0:
            d.destroy()
            return None
        return d

    def initial_guess(self):
        """The model's declared first guess (``Model.initial``, tracer -> mmol m-3), zeros elsewhere."""
        sysm = self.system
        guess = sysm.model.initial
        if not guess:
            u = sysm.dgrid.create_vec(sysm.nt)
            u.set(0.0)
            return u
        arr = np.zeros((sysm.nt, sysm.grid.nwet))
        for a, name in enumerate(sysm.model.tracer_names):
            arr[a] = guess.get(name, 0.0)
        return sysm.vec_from_natural(list(arr))

    def sensitivities(self, order: int = 2):
        """First (list ``u_i``) and, if ``order == 2``, second (dict ``(i, j) -> u_ij``, ``i <= j``) sensitivities."""
        with stage(SENSITIVITIES):
            return self._sensitivities(order)

    def _sensitivities(self, order):
        u1 = self.first_order()
        if order < 2:
            return u1, {}
        return u1, self.second_order(u1)

    def first_order(self):
        """``F_u u_i = -F_i`` for every optimised parameter (one block solve); list of Vecs."""
        t0 = time.perf_counter()
        u1 = self._solve_negated([self.system.F_x(self.u, i) for i in range(self.system.npar)])
        self.timings["sens1"] = time.perf_counter() - t0
        progress(log, t0, "steady state '%s': %d first-order sensitivities in %.1f s", self.prefix, len(u1),
                 self.timings["sens1"])
        return u1

    def second_order(self, u1):
        """``F_u u_ij = -r_ij`` for every pair ``i <= j`` (one block solve); dict ``(i, j) -> Vec``."""
        m = self.system.npar
        t0 = time.perf_counter()
        pairs = [(i, j) for i in range(m) for j in range(i, m)]
        sols = self._solve_negated([self.second_order_rhs(u1, i, j) for i, j in pairs])
        self.timings["sens2"] = time.perf_counter() - t0
        progress(log, t0, "steady state '%s': %d second-order sensitivities in %.1f s", self.prefix, len(sols),
                 self.timings["sens2"])
        return dict(zip(pairs, sols))

    def _solve_negated(self, rhs):
        """Solutions of ``F_u x = -r`` for the right-hand sides ``r`` (consumed: negated and destroyed)."""
        for r in rhs:
            r.scale(-1.0)
        try:
            return self._solve_blocks(rhs)
        finally:
            for r in rhs:
                r.destroy()

    def _solve_blocks(self, rhs):
        """``solve_many`` in blocks of at most ``-<prefix>rhs_block`` right-hand sides (0: all at once).
        Smaller blocks need less memory on the Krylov paths (one basis per right-hand side) and cost
        more passes over the factors."""
        size = get_option(self.prefix, "rhs_block", self.solver.rhs_block) or len(rhs)
        out = []
        for k in range(0, len(rhs), max(size, 1)):
            out.extend(self.solver.solve_many(rhs[k:k + size]))
        return out

    @property
    def has_adjoint(self) -> bool:
        """Whether the current factorization/preconditioner can solve with ``F_u^T``."""
        return self.solver is not None and self.solver.supports_transpose

    def adjoint_solve(self, rhs):
        """``F_u^T mu = rhs`` with the factorization of the current state (one transposed solve)."""
        with stage(SENSITIVITIES):
            t0 = time.perf_counter()
            mu = self.solver.solve_transpose(rhs)
            self.timings["adjoint"] = time.perf_counter() - t0
            return mu

    def second_order_rhs(self, u1, i: int, j: int):
        """``r_ij = F_ij + F_ui u_j + F_uj u_i + F_uu(u_i, u_j)`` (so ``F_u u_ij = -r_ij``, spec §2.5)."""
        sysm, u = self.system, self.u
        r = sysm.F_xx(u, i, j)
        for a, b in ((i, j), (j, i)):
            t = sysm.F_ux(u, a, u1[b])
            r.axpy(1.0, t)
            t.destroy()
        t = sysm.F_uu(u, u1[i], u1[j])
        r.axpy(1.0, t)
        t.destroy()
        return r

    def second_order_projections(self, u1, lam):
        """``lam^T u_ij`` for all pairs ``i <= j`` by the adjoint method: ``-mu^T r_ij`` with
        ``F_u^T mu = lam``, one transposed solve instead of one solve per pair."""
        mu = self.adjoint_solve(lam)
        out = {}
        m = self.system.npar
        for i in range(m):
            for j in range(i, m):
                r = self.second_order_rhs(u1, i, j)
                out[(i, j)] = -r.dot(mu)
                r.destroy()
        mu.destroy()
        return out

    def release_factorization(self):
        """Free the factorization (or preconditioner) and keep the state ``u``: for a state that is
        only a warm start for another solve, whose factors would otherwise stay alive beside the
        other solve's.  Sensitivities and adjoint solves need :meth:`solve` again."""
        if self.solver is not None:
            self.solver.destroy()
            self.solver = None

    def destroy(self):
        if self.solver is not None:
            self.solver.destroy()
            self.solver = None
        if self.u is not None:
            self.u.destroy()
            self.u = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False
