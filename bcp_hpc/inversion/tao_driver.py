"""Bayesian inversion driven by TAO's bounded trust-region Newton (``bntr``).

Why ``bntr``: the exact Hessian is available (one factorization gives all sensitivities),
so a Newton method with a trust region (like the group's ``fminunc`` trust-region runs)
converges in few iterations; the *bounded* variant enforces the parameter bounds of the
parameter table exactly (in transformed space), replacing the code's ad-hoc guard.  Any
TAO type can be chosen with ``-inv_tao_type nls`` etc.

The parameter vector (a few entries) lives on rank 0; every rank evaluates the objective
collectively and receives ``x`` by broadcast, so iterates are identical on any number of
ranks.  Each accepted iterate is logged on rank 0 (iteration, objective, gradient norm,
parameters in physical units), appended as a JSON line, and checkpointed atomically.

A checkpoint records the *problem* it belongs to (the parts of the run description that define
the objective: world, model, parameters, observations); ``resume`` refuses a checkpoint of another
problem and names the keys that differ.  A fresh (not resumed) run starts a fresh iteration log; a
resumed one keeps the log's records up to the checkpoint's iteration.
"""
from __future__ import annotations

import json
import logging
import os
import time

import numpy as np

from ..errors import ConfigError, SolverError
from ..memory import current_rss_bytes, peak_rss_bytes
from ..petsc_env import import_petsc4py
from ..solvers.options import OptionsScope, tao_reason
from .checkpoint import read_checkpoint, write_checkpoint
from .posterior import stopping_measures
from .trust_radius import current_trust_radius

PETSc = import_petsc4py()
log = logging.getLogger(__name__)

#: bntr's trust-region subproblem is solved by its KSP (options prefix ``tao_bnk_``): Steihaug CG
#: preconditioned by bntr's BFGS approximation of the Hessian.  On the tiny joint twin that takes 21
#: TAO iterations; unpreconditioned CG did not converge in 50 and Jacobi took 49 (docs/models.md)
TAO_DEFAULTS = {"tao_type": "bntr", "tao_max_it": "50", "tao_gatol": "1e-9", "tao_grtol": "1e-10",
                "tao_gttol": "0", "tao_bnk_ksp_type": "stcg", "tao_bnk_pc_type": "lmvm",
                "tao_bnk_init_type": "constant", "stop_sigma": "0"}
#: ``-inv_stop_sigma S`` (S > 0, with a noise variance): an accepted iterate whose remaining Newton step is
#: below S posterior standard deviations (:func:`~.posterior.remaining_step_sigma`) ends the inversion
#: as converged: along the directions the data constrain, every parameter lies within S of its posterior
#: σ of the optimum, provided the directions they do not constrain promise less than
#: :data:`STOP_FLAT_DECREASE` (:func:`~.posterior.flat_decrease`).  Unlike a gradient tolerance, this does
#: not depend on the parameters' scales or on how flat the posterior is.
STOP_SIGMA_OPTION = "stop_sigma"
#: log-likelihood units (objective / s²) the flat directions may still promise at a posterior-scaled stop:
#: a likelihood ratio of 0.1, far inside any credible region
STOP_FLAT_DECREASE = 0.05
#: the reason reported when the posterior-scaled test ends an inversion
CONVERGED_STEP_SIGMA = "CONVERGED_STEP_SIGMA"
#: objective TAO receives at a trial point without a steady state (TAO refuses Inf): the step is rejected
#: and the trust region shrinks
REJECTED_OBJECTIVE = 1e100

#: initial trust radius in the transformed (log) parameter space: a factor e in any one parameter.
#: TAO's "interpolation" initialisation spends 4-6 extra steady states probing for a radius and
#: then starts far too small (1e-3..1e-2 here), so Newton steps with the exact Hessian are cut for
#: several iterations; a constant radius of 1 lets the first full Newton step through.  Override
#: with ``-inv_tao_trust0`` or ``-inv_tao_bnk_init_type interpolation``.
INITIAL_TRUST_RADIUS = 1.0


class InversionResult(dict):
    pass


class Inversion:
    def __init__(self, objective, prefix: str = "inv_", checkpoint: str | None = None, log_jsonl: str | None = None,
                 stop_after: int | None = None, tao_defaults: dict | None = None, problem: dict | None = None,
                 noise_variance=None):
        self.obj = objective
        #: ``f -> s²``, the posterior's noise variance at objective ``f`` (None: no posterior-scaled test)
        self.noise_variance = noise_variance
        self.tao_defaults = dict(TAO_DEFAULTS, **(tao_defaults or {}))   # under the user's options
        self.prefix = prefix
        self.checkpoint = checkpoint
        self.log_jsonl = log_jsonl
        self.stop_after = stop_after        # testing aid: stop (as if killed) after k accepted iterates
        self.problem = problem              # what the checkpoint belongs to (JSON-able), checked on resume
        self.comm = objective.comm
        self.params = objective.system.model.parameters
        self.names = self.params.optimized
        self.history = []

    # ------------------------------------------------------------------ helpers
    def _bcast_x(self, xvec) -> np.ndarray:
        arr = xvec.getArray(readonly=True).copy() if self.comm.rank == 0 else None
        return self.comm.bcast(arr, root=0)

    def _memory(self) -> tuple:
        """Resident memory now and its peak so far, of the largest rank (bytes)."""
        from mpi4py import MPI
        rss = current_rss_bytes()
        # the kernel's peak counter lags its current count by a few pages
        here = np.array([rss, max(rss, peak_rss_bytes())], dtype=np.int64)
        out = np.empty_like(here)
        self.comm.Allreduce(here, out, op=MPI.MAX)
        return int(out[0]), int(out[1])

    def _physical(self, x):
        return {n: self.params[n].from_x(xi) for n, xi in zip(self.names, x)}

    def _eval(self, x, order: int = 2):
        """Objective data at ``x``; the Hessian (second-order sensitivities) only when asked, so
        rejected trial points cost a state solve and first-order sensitivities only."""
        last = self.obj.last
        if last is not None and np.array_equal(last[0], x) and (order < 2 or last[3] is not None):
            return last[1], last[2], last[3]
        return self.obj.evaluate(x, order=order)

    def _check_problem(self, ck):
        """Refuse to resume from a checkpoint of another problem (naming the keys that differ)."""
        if self.problem is None:
            return
        stored = ck.get("problem")
        if stored is None:
            raise ConfigError(f"checkpoint {self.checkpoint} does not say which problem it belongs to (written by "
                              "another version): run without --resume, or into another --out folder")
        diff = differing_keys(json.loads(stored), json.loads(json.dumps(self.problem, sort_keys=True)))
        if diff:
            raise ConfigError(f"--resume: checkpoint {self.checkpoint} belongs to another problem; these differ "
                              f"from the run it was made for: {', '.join(diff)} (run without --resume, or into "
                              "another --out folder)")

    def _warm_start_from_checkpoint(self):
        """Start the resumed run's first steady state from the state stored with the checkpoint's
        iterate (read on rank 0, scattered by rows), so that it converges at once instead of redoing
        a Newton solve from another state.  A checkpoint without a usable state (other tracers,
        another grid, unreadable) is resumed without it, saying so."""
        system = self.obj.system
        names = list(system.model.tracer_names)
        fields, why = None, None
        if self.comm.rank == 0:
            try:
                state = read_checkpoint(self.checkpoint).get("state", {})
                missing = [n for n in names if n not in state]
                if missing:
                    why = f"it has no state of {', '.join(missing)}"
                else:
                    fields = [np.asarray(state[n], dtype=float) for n in names]
                    if any(f.shape != (system.dgrid.grid.nwet,) or not np.all(np.isfinite(f)) for f in fields):
                        fields, why = None, f"its state is not {system.dgrid.grid.nwet} finite values per tracer"
            except Exception as exc:  # noqa: BLE001  (the parameters were read: resume without the state)
                why = f"its state is unreadable ({exc})"
        why = self.comm.bcast(why, root=0)
        if why is not None:
            log.info("resuming without the checkpoint's state (%s): the first steady state starts from the "
                     "usual initial guess", why)
            return
        self.obj.set_warm_start(system.dgrid.vec_from_root(fields, len(names)))
        log.info("warm start: the steady state stored with the checkpoint's iterate")

    def _start_log(self, keep_until):
        """A fresh iteration log, or (resume) the log's records up to iteration ``keep_until``."""
        kept = []
        if keep_until is not None and os.path.exists(self.log_jsonl):
            with open(self.log_jsonl) as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        break                    # a line cut by an interrupt: nothing after it counts
                    if rec.get("iteration", 0) <= keep_until:
                        kept.append(line if line.endswith("\n") else line + "\n")
        with open(self.log_jsonl, "w") as fh:
            fh.writelines(kept)

    # ------------------------------------------------------------------ run
    def _stop_sigma(self) -> float:
        """``-<prefix>stop_sigma`` (the cycle's default under the user's value), checked before anything is
        written; 0 without a noise variance."""
        options = OptionsScope(self.prefix, self.tao_defaults)
        with options.inserted():
            text = PETSc.Options().getString(self.prefix + STOP_SIGMA_OPTION, "0")
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not (np.isfinite(value) and value >= 0.0):
            raise ConfigError(f"-{self.prefix}{STOP_SIGMA_OPTION} must be a number >= 0 (posterior standard "
                              f"deviations; 0 leaves stopping to TAO's tests), got {text!r}")
        return value if self.noise_variance is not None else 0.0

    def run(self, x0=None, resume: bool = False):
        stop_sigma = self._stop_sigma()
        m = len(self.names)
        start_it = 0
        radius0 = None
        resumed = resume and self.checkpoint and os.path.exists(self.checkpoint)
        if resumed:
            ck = read_checkpoint(self.checkpoint, m, with_state=False)
            self._check_problem(ck)
            self._warm_start_from_checkpoint()
            x0 = ck["x"]
            start_it = ck["iteration"]
            self.history = ck.get("history", [])
            radius0 = ck.get("trust_radius")
            log.info("resuming from %s at iteration %d (objective %.6e)", self.checkpoint, start_it, ck["objective"])
        if x0 is None:
            x0 = self.params.get_x()
        x0 = np.asarray(x0, float)
        rank0 = self.comm.rank == 0
        if rank0 and self.log_jsonl:
            self._start_log(start_it if resumed else None)
        comm = self.obj.system.dgrid.comm
        x = PETSc.Vec().createMPI((m if rank0 else 0, m), comm=comm)
        if rank0:
            x.getArray()[:] = x0
        grad = x.duplicate()
        H = PETSc.Mat().createDense(((m if rank0 else 0, m), (m if rank0 else 0, m)), comm=comm)
        H.setUp()
        H.assemble()
        lo, hi = x.duplicate(), x.duplicate()
        lo_x = np.array([self.params[n].to_x(max(self.params[n].bounds[0], 1e-300))
                         if self.params[n].transform == "log" else self.params[n].bounds[0] for n in self.names])
        hi_x = np.array([self.params[n].to_x(self.params[n].bounds[1]) if np.isfinite(self.params[n].bounds[1])
                         else np.inf for n in self.names])
        if rank0:
            lo.getArray()[:] = lo_x
            hi.getArray()[:] = np.where(np.isfinite(hi_x), hi_x, PETSc.INFINITY)
        # this inversion's defaults, in the options database only while TAO reads them
        options = OptionsScope(self.prefix, self.tao_defaults)
        tao = PETSc.TAO().create(comm=comm)
        tao.setOptionsPrefix(self.prefix)
        self.n_evals = 0
        self.rejected = 0
        t_start = time.perf_counter()

        def objgrad(tao_, xv, g):
            xx = self._bcast_x(xv)
            self.n_evals += 1
            try:
                f, gg, _ = self._eval(xx, order=1)
            except SolverError as exc:
                if self.obj.last is None:
                    raise                           # not even the start has a steady state
                self.rejected += 1
                log.warning("trial parameters without a steady state (%s): step rejected", exc)
                g.set(0.0)
                return REJECTED_OBJECTIVE
            if rank0:
                g.getArray()[:] = gg
            return f

        def hessian(tao_, xv, Hm, P):
            xx = self._bcast_x(xv)
            _, _, HH = self._eval(xx)
            if rank0:
                Hm.getDenseArray()[:] = HH
            Hm.assemble()

        state = {"k": start_it, "calls": 0, "step_sigma": None, "flat": None, "stopped_by_sigma": False}

        def step_sigma(xx, f, g, HH):
            """The remaining Newton step at ``xx`` in posterior σ and what the flat directions still promise
            (log-likelihood units), rank 0's figures on every rank, into ``state``."""
            d = None
            if rank0:
                # a parameter on a bound that the gradient pushes against takes no part in the step
                held = ((xx <= lo_x + 1e-9 * np.maximum(1.0, np.abs(lo_x))) & (g > 0)) | \
                       ((xx >= hi_x - 1e-9 * np.maximum(1.0, np.abs(hi_x))) & (g < 0))
                d = stopping_measures(g, HH, self.noise_variance(f), free=~held)
            state["step_sigma"], state["flat"] = self.comm.bcast(d, root=0)

        def monitor(tao_):
            _, f, gnorm, _, _, _ = tao_.getSolutionStatus()
            xx = self._bcast_x(tao_.getSolution())
            its = state["calls"]
            state["calls"] += 1
            if its > 0 and self.history and np.array_equal(self.history[-1]["x"], xx):
                return  # same iterate reported twice (bntr's initial radius step)
            it = start_it + its
            phys = self._physical(xx)
            radius = current_trust_radius(tao_)
            rss, peak = self._memory()
            if stop_sigma > 0:
                # with the Hessian bntr asks for next anyway (cached)
                step_sigma(xx, *self._eval(xx, order=2))
            rec = {"iteration": it, "objective": f, "gradient_norm": gnorm, "trust_radius": radius,
                   "x": [float(v) for v in xx],
                   "parameters": {n: {"value": v, "units": self.params[n].units} for n, v in phys.items()},
                   "remaining_step_sigma": state["step_sigma"], "flat_decrease": state["flat"],
                   "elapsed_s": time.perf_counter() - t_start,
                   "rss_bytes_largest_rank": rss, "peak_rss_bytes_largest_rank": peak}
            if stop_sigma > 0 and state["step_sigma"] < stop_sigma and state["flat"] < STOP_FLAT_DECREASE:
                state["stopped_by_sigma"] = True
                tao_.setConvergedReason(PETSc.TAO.Reason.CONVERGED_USER)
            if its == 0 and resumed:
                return  # the resumed iterate is already logged
            self.history.append({"objective": f, "x": rec["x"]})
            if rank0:
                log.info("iter %3d  f %.8e  |g| %.3e%s  radius %s  memory %.2f GiB  %s", it, f, gnorm,
                         "" if state["step_sigma"] is None else
                         f"  step {state['step_sigma']:.2g} sigma  flat {state['flat']:.2g}",
                         "-" if radius is None else f"{radius:.3e}", rss / 2**30,
                         "  ".join(f"{n} {v:.5g} {self.params[n].units}" for n, v in phys.items()))
                if self.log_jsonl:
                    with open(self.log_jsonl, "a") as fh:
                        fh.write(json.dumps(rec) + "\n")
            if self.checkpoint:
                self._eval(xx, order=2)  # the accepted iterate's Hessian (needed next anyway; cached)
                last = self.obj.last
                state_nat = self.obj.state_to_natural(root=0)     # gathered where it is written only
                if rank0 and last is not None and np.array_equal(last[0], xx):
                    meta = {} if radius is None else {"trust_radius": radius}
                    if self.problem is not None:
                        meta["problem"] = json.dumps(self.problem, sort_keys=True)
                    write_checkpoint(self.checkpoint, it, xx, phys, f, last[2], last[3], state_nat,
                                     self.obj.system.model.tracer_names, self.history, meta=meta)
            state["k"] = it
            if self.stop_after is not None and it >= self.stop_after:
                tao_.setConvergedReason(PETSc.TAO.Reason.CONVERGED_USER)

        tao.setObjectiveGradient(objgrad, grad)
        tao.setHessian(hessian, H)
        tao.setSolution(x)
        tao.setVariableBounds(lo, hi)
        tao.setMonitor(monitor)
        if radius0 is not None and radius0 > 0:
            # continue with the radius the interrupted run had reached, not TAO's fresh initial guess
            options.set_default("tao_bnk_init_type", "constant")
            tao.setInitialTrustRegionRadius(radius0)
        else:
            tao.setInitialTrustRegionRadius(INITIAL_TRUST_RADIUS)
        try:
            with options.inserted():
                tao.setFromOptions()
        except PETSc.Error as exc:
            tao.destroy()
            for o in (x, grad, H, lo, hi):
                o.destroy()
            raise ConfigError(f"the TAO options under -{self.prefix} are not valid (-{self.prefix}tao_type "
                              f"{PETSc.Options().getString(self.prefix + 'tao_type', self.tao_defaults['tao_type'])}"
                              f"?): {str(exc).splitlines()[0]}") from None
        try:
            tao.solve()
            reason = tao.getConvergedReason()
            its = max(state["k"] - start_it, 0)
            xf = self._bcast_x(tao.getSolution())
        finally:
            tao.destroy()
            for o in (x, grad, H, lo, hi):
                o.destroy()
        f, g, Hf = self._eval(xf)
        self.params.set_x(xf)
        if self.noise_variance is not None:
            step_sigma(xf, f, g, Hf)
        reason_name = tao_reason(reason)
        if state["stopped_by_sigma"]:
            reason_name = (f"{CONVERGED_STEP_SIGMA} (remaining step {state['step_sigma']:.2g} < {stop_sigma:g} sigma, "
                           f"flat directions {state['flat']:.2g} < {STOP_FLAT_DECREASE:g})")
        return InversionResult(x=xf, objective=f, gradient=g, hessian=Hf, iterations=start_it + its, reason=int(reason),
                               reason_name=reason_name, converged=int(reason) > 0,
                               remaining_step_sigma=state["step_sigma"], flat_decrease=state["flat"],
                               rejected_trial_points=self.rejected,
                               evaluations=self.n_evals, parameters=self._physical(xf),
                               seconds=time.perf_counter() - t_start)


def differing_keys(a, b, prefix: str = "") -> list:
    """Dotted keys where two nested dicts differ (missing on one side counts)."""
    out = []
    for k in sorted(set(a) | set(b)):
        key = f"{prefix}{k}"
        if k not in a or k not in b:
            out.append(key)
        elif isinstance(a[k], dict) and isinstance(b[k], dict):
            out += differing_keys(a[k], b[k], key + ".")
        elif a[k] != b[k]:
            out.append(f"{key} ({a[k]!r} -> {b[k]!r})")
    return out
