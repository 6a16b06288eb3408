"""Negative log posterior (spec §5.2-5.4) with exact gradient and Hessian.

``f(x) = sum_t s_t / (2 sigma_t^2) sum_i w_i (c_i(x) - y_i)^2 + priors``, volume weights
``w_i = V_i / sum V`` over observed boxes, ``sigma_t^2`` the weighted variance of the
observations (fixed).  Gradient and Hessian use the first- and second-order state
sensitivities solved with the one factorization of each evaluation:

``grad = sum_t s_t/sigma_t^2 J^T W e``,
``Hess = sum_t s_t/sigma_t^2 (J^T W J + sum_i w_i e_i H_i)``.

The second term needs ``lam^T u_ij`` with ``lam = sum_t s_t/sigma_t^2 W e`` only, so by default
(``hessian="adjoint"``) it is computed as ``-mu^T r_ij`` with one transposed solve
``F_u^T mu = lam`` instead of one solve per parameter pair (10 for the P model, 231 for 21
parameters); ``hessian="forward"`` solves the second-order sensitivities themselves (spec §2.5).
Both are exact; the test suite checks them against each other and against finite differences.
The first-order sensitivities of the gradient call are kept for the Hessian call at the
same parameters.

Everything is computed on each rank's own boxes and summed with ``allreduce``, so the
result is the same on any number of ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..solvers.steady import SteadyState


@dataclass
class Observation:
    tracer: str             #: a tracer, or the name of an observable that is a sum of tracers (``combination``)
    values: np.ndarray      #: natural order, NaN where not observed (mmol m-3); this rank's boxes if ``local``
    scale: float = 1.0      #: s_t
    source: str = ""
    combination: dict | None = None   #: {tracer: coefficient} of a derived observable (total DOC = DOC_s+DOC_l+DOC_r)
    #: ``values`` hold this rank's boxes only, in the order of ``DistributedGrid.local_natural``
    local: bool = False


class Objective:
    def __init__(self, system, observations: list, prefix: str = "steady_", hessian: str = "adjoint"):
        if hessian not in ("adjoint", "forward"):
            raise InputError(f"hessian must be 'adjoint' or 'forward', got {hessian!r}")
        self.hessian_mode = hessian
        self._u1 = None           # first-order sensitivities of the current state (Vecs)
        self.system = system
        self.steady = SteadyState(system, prefix=prefix)
        self.comm = system.dgrid.comm.tompi4py()
        grid = system.grid
        names = system.model.tracer_names
        self.terms = []
        loc = system.loc
        for ob in observations:
            combination = ob.combination or {ob.tracer: 1.0}
            for t in combination:
                if t not in names:
                    raise InputError(f"observed tracer '{t}' is not in model {system.model.name} ({names})",
                                     path=ob.source or None)
            y = np.asarray(ob.values, dtype=float)
            expected = (loc.size,) if ob.local else (grid.nwet,)
            wrong = y.shape != expected
            if ob.local:            # every rank raises, or none does
                wrong = bool(self._allsum(int(wrong)))
            if wrong:
                raise InputError(f"observations have shape {y.shape}, the model grid has {grid.nwet} wet boxes "
                                 + (f"({loc.size} on this rank) " if ob.local else "")
                                 + "(observation file on another grid?)", path=ob.source or None, variable=ob.tracer)
            if not ob.local:
                y = y[loc]
            # this rank's boxes; the weights' normalisation, mean and variance are reductions
            ok = np.isfinite(y)
            n = int(self._allsum(int(ok.sum())))
            if n < 2:
                raise InputError("fewer than two observed boxes", path=ob.source or None, variable=ob.tracer)
            V = grid.box_volume[loc]
            w = np.where(ok, V, 0.0) / self._allsum(float(V[ok].sum()))
            ybar = self._allsum(float((w[ok] * y[ok]).sum()))
            var = self._allsum(float((w[ok] * (y[ok] - ybar) ** 2).sum()))
            lo, hi = self._extremes(y[ok])
            if lo == hi:
                raise InputError(f"observations are the same value ({lo:g}) in all {n} observed boxes: "
                                 "the misfit is weighted by the observations' volume-weighted variance, which is zero",
                                 path=ob.source or None, variable=ob.tracer)
            self.terms.append({"combo": [(names.index(t), float(c)) for t, c in combination.items()], "w": w,
                               "y": np.where(ok, y, 0.0), "ok": ok, "coef": ob.scale / var,
                               "n": n, "name": ob.tracer})
        self.n_obs = sum(t["n"] for t in self.terms)
        self.last = None
        self.state_natural = None

    def _allsum(self, a):
        from mpi4py import MPI
        return self.comm.allreduce(a, op=MPI.SUM) if np.ndim(a) == 0 else self.comm.allreduce(np.asarray(a), op=MPI.SUM)

    def _extremes(self, values):
        """(min, max) of ``values`` over all ranks (a rank may hold none)."""
        from mpi4py import MPI
        lo = float(values.min()) if values.size else np.inf
        hi = float(values.max()) if values.size else -np.inf
        return self.comm.allreduce(lo, op=MPI.MIN), self.comm.allreduce(hi, op=MPI.MAX)

    def evaluate(self, x, order: int = 2, warm: bool = True):
        """Objective, gradient and (order 2) Hessian at transformed parameters ``x``.

        A second call at the same ``x`` (e.g. the Hessian after the gradient) reuses the
        steady state and its factorization.  Logged as the PETSc stage ``bcp: objective``."""
        from ..solvers.profiling import OBJECTIVE, stage
        with stage(OBJECTIVE):
            return self._evaluate(x, order, warm)

    def _drop_u1(self):
        for v in self._u1 or []:
            v.destroy()
        self._u1 = None

    def _evaluate(self, x, order, warm):
        ps = self.system.model.parameters
        x = np.asarray(x, dtype=float)
        if self.last is not None and self.steady.u is not None and np.array_equal(self.last[0], x):
            u = self.steady.u          # same parameters: the state and its factorization are current
        else:
            self._drop_u1()
            ps.set_x(x)
            u0 = self.steady.u if (warm and self.steady.u is not None) else None
            u = self.steady.solve(u0)
        ul = self.system.local_state(u)
        m = self.system.npar
        f = 0.0
        g = np.zeros(m)
        H = np.zeros((m, m))
        u2 = {}
        adjoint = order >= 2 and self.hessian_mode == "adjoint" and self.steady.has_adjoint
        if order >= 1:
            if self._u1 is None:
                self._u1 = self.steady.first_order()
            J = [self.system.local_state(v) for v in self._u1]
            if order >= 2 and not adjoint:
                u2 = self.steady.second_order(self._u1)
        lam = None
        if adjoint:
            lam = self.system.dgrid.create_vec(self.system.nt)
            lam.set(0.0)
            lam_loc = lam.getArray().reshape(self.system.nt, -1)
        for t in self.terms:
            combo = t["combo"]
            e = np.where(t["ok"], _combine(ul, combo) - t["y"], 0.0)
            we = t["w"] * e
            f += 0.5 * t["coef"] * float((we * e).sum())
            if order >= 1:
                Ja = np.array([_combine(Ji, combo) for Ji in J])  # (m, nloc)
                g += t["coef"] * (Ja @ we)
                if order >= 2:
                    H += t["coef"] * ((Ja * t["w"]) @ Ja.T)
                    if adjoint:
                        for a, c in combo:
                            lam_loc[a] += c * t["coef"] * we
                    for (i, j), v in u2.items():
                        val = t["coef"] * float((we * _combine(self.system.local_state(v), combo)).sum())
                        H[i, j] += val
                        if i != j:
                            H[j, i] += val
        f = float(self._allsum(f))
        g = self._allsum(g) if order >= 1 else None
        H = self._allsum(H) if order >= 2 else None
        if adjoint:
            del lam_loc
            for (i, j), val in self.steady.second_order_projections(self._u1, lam).items():   # global dots
                H[i, j] += val
                if i != j:
                    H[j, i] += val
            lam.destroy()
        for v in u2.values():
            v.destroy()
        # Gaussian priors in transformed space
        for k, name in enumerate(ps.optimized):
            pr = ps[name].prior
            if pr is not None:
                mu, sd = pr
                f += 0.5 * ((x[k] - mu) / sd) ** 2
                if g is not None:
                    g[k] += (x[k] - mu) / sd ** 2
                if H is not None:
                    H[k, k] += 1.0 / sd ** 2
        self.last = (np.array(x, dtype=float), f, g, H)
        return f, g, H

    def set_warm_start(self, u):
        """Start the next steady-state solve from ``u`` (a Vec of the system's layout; owned from now
        on), e.g. the state stored with a checkpoint's iterate."""
        self._drop_u1()
        if self.steady.u is not None:
            self.steady.u.destroy()
        self.steady.u = u
        self.last = None

    def state_to_natural(self, root: int | None = None):
        """The steady state (nt, n) in natural order, on every rank or on ``root`` only."""
        return self.system.to_natural(self.steady.u, root=root)

    def destroy(self):
        self._drop_u1()
        self.steady.destroy()


def _combine(local_state, combo):
    """``sum c * state[a]`` over an observable's (tracer index, coefficient) pairs (local boxes)."""
    (a0, c0), *rest = combo
    out = local_state[a0] if c0 == 1.0 else c0 * local_state[a0]
    for a, c in rest:
        out = out + c * local_state[a]
    return out
