"""A declared :class:`~bcp_hpc.models.base.Model` on a distributed grid: residual, Jacobian, derivatives.

Variables of the local terms are the tracers (one per field) and the *transformed*
optimised parameters ``x`` (``ln p`` for log parameters); everything is evaluated on
each rank's own boxes only.  Notation (spec §2.5): ``F(u; x) = Op(x) u - s(u; x)``.

* ``linearise(u)``: ``F_u`` as a distributed PETSc AIJ matrix with its natural-order block terms
  and the tracer coupling pattern (:class:`Linearisation`, what the solvers are built from);
  ``jacobian(u)`` is its matrix;
* ``F_x(i)``: ``dF/dx_i``; ``F_xx(i, j)``; ``F_ux(i, v)`` = ``(dF_u/dx_i) v``; ``F_uu(v, w)``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from dataclasses import dataclass

from ..grid.distributed import LocalDiagonal
from ..petsc_env import import_petsc4py
from .ad2 import AD2
from .base import Model

PETSc = import_petsc4py()


@dataclass
class Linearisation:
    """``F_u`` at one state, in the forms the solvers use."""

    matrix: object            #: distributed PETSc AIJ matrix (refilled in place while the pattern holds)
    terms: dict               #: (a, b) -> list of terms of block J_ab: SciPy operators (natural order, this
    #: rank's rows) or diagonals at this rank's boxes (:class:`~bcp_hpc.grid.distributed.LocalDiagonal`)
    coupling: np.ndarray      #: (nt, nt) bool, equation a depends on tracer b (same on every rank)
    pattern_changed: bool     #: the matrix is new (a factorization must redo its symbolic analysis)


class Evaluated:
    """A local term evaluated over all of a rank's boxes: value ``v`` (n), dense first derivatives
    ``g`` (m, n) and second derivatives ``h`` (:class:`~.ad2.SparseSecond`, ``h[i, j]`` an n-vector)."""
    __slots__ = ("v", "g", "h")

    def __init__(self, v, g, h):
        self.v, self.g, self.h = v, g, h


class ModelSystem:
    def __init__(self, model: Model, dgrid, T):
        """``T``: the transport operator (s^-1, natural order) as a SciPy matrix (whole or
        row-restricted), a :class:`~bcp_hpc.operators.world.World` or a
        :class:`~bcp_hpc.operators.rows.TransportSource`; the system keeps only this rank's rows."""
        from ..operators.rows import restrict_rows
        self.model = model
        self.dgrid = dgrid
        self.grid = dgrid.grid
        self.nt = model.nfields
        self.loc = dgrid.local_natural
        self.nloc = self.loc.size
        if hasattr(T, "transport_rows"):
            T = T.transport_rows(self.loc)
        elif hasattr(T, "rows"):
            T = T.rows(self.loc)
        else:
            T = restrict_rows(T, self.loc)
        #: this rank's rows of T (row-restricted, natural order): all that the block terms and the
        #: distributed matrix read; sums over all rows are reductions
        self.T = T
        # column-local sinking operators: a rank's rows hold all of its columns' entries
        self._sink_base = {k: spec.rows(self.grid, self.loc) for k, spec in model.sinking.items()}
        self._sink_local = {k: sp.csr_matrix(F)[self.loc][:, self.loc] for k, F in self._sink_base.items()}
        self.local_fields = {k: (np.asarray(v)[self.loc] if np.ndim(v) == 1 and np.size(v) == self.grid.nwet else v)
                             for k, v in model.fields.items()}
        model.release_fields()      # the rows above are all a solve reads; diagnostics rebuild the rest
        self.Tp = dgrid.matrix_from_scipy(self.T)
        self._J = None
        self._pattern = None
        #: the Jacobian's pattern on this rank and where each block term goes in it (reused while the
        #: terms' patterns hold)
        self._assembly = None
        #: evaluations of the local terms at the current state and parameters, by derivative order
        self._cache = {}
        self._pairs = None

    # ------------------------------------------------------------ parameters
    @property
    def param_names(self):
        return self.model.parameters.optimized

    @property
    def npar(self):
        return len(self.param_names)

    def _params_ad(self, m: int, n: int, with_grad: bool, order: int = 2):
        ps = self.model.parameters
        out = {}
        opt = ps.optimized
        for p in ps:
            if with_grad and p.name in opt:
                i = self.nt + opt.index(p.name)
                x = AD2.variable(p.to_x(), i, m, n, order=order)
                from .ad2 import exp
                out[p.name] = exp(x) if p.transform == "log" else x
            else:
                out[p.name] = p.value
        return out

    # ------------------------------------------------------------ evaluation
    def local_state(self, u) -> np.ndarray:
        return u.getArray(readonly=True).reshape(self.nt, self.nloc)

    def evaluate(self, u, full=True):
        """Local terms and sinking scales at state ``u``: AD2 with first and second derivatives
        with respect to tracers and parameters (``full=True``), first derivatives with respect to
        the tracers only (``full="jacobian"``: what ``F_u`` needs, without the ``m^2 n`` Hessian
        arrays), first and second derivatives with respect to the tracers only
        (``full="tracers"``: the linearity check), or values only (``full=False``, used by the
        residual).  Cached on the state values and parameters."""
        c_arr = self.local_state(u)
        key = self._key(c_arr, full)
        if key in self._cache:
            return self._cache[key]
        # only the current state's evaluations are kept: the second-order ones of an earlier state
        # (m^2 n per term) would otherwise stay alive through the next Newton solve
        for old in [k for k in self._cache if k[:-1] != key[:-1]]:
            del self._cache[old]
        if full is True:     # the full evaluation holds everything the lower orders do
            self._cache.clear()
        n = self.nloc
        order = 1 if full in ("jacobian", "first") else 2
        if full in ("jacobian", "tracers"):
            m = self.nt
        elif full:            # True, or "first": first derivatives w.r.t. tracers and parameters (F_x)
            m = self.nt + self.npar
        else:
            m = 0
        if order == 2 and m > 0:
            s, scales = self._evaluate_chunked(c_arr, m, full is True)
        else:
            if m:
                c = {t.name: AD2.variable(c_arr[a], a, m, n, order=order) for a, t in enumerate(self.model.tracers)}
            else:
                c = {t.name: AD2.const(c_arr[a], 0, n) for a, t in enumerate(self.model.tracers)}
            p = self._params_ad(m, n, full == "first", order=order)
            s = self.model.local_terms(c, p, self.local_fields)
            s = {k: (v if isinstance(v, AD2) else AD2.const(v, m, n, order)) for k, v in s.items()}
            scales = {}
            for k, spec in self.model.sinking.items():
                sc = spec.scale(p, self.local_fields)
                scales[k] = sc if isinstance(sc, AD2) else AD2.const(sc, m, n, order)
        self._cache[key] = (s, scales)
        return self._cache[key]

    def forget_evaluations(self):
        """Drop the cached evaluations of the local terms (e.g. before a timed evaluation)."""
        self._cache, self._pairs = {}, None

    def release_linearisation(self):
        """Free the Jacobian, its assembly plan and the cached evaluations while the system waits
        (e.g. the twin truth's system while other models are inverted); the next :meth:`linearise`
        builds them again."""
        # the reference is dropped, not destroyed: a solver factored from this Jacobian may still
        # hold it (a block-triangular solver multiplies by its couplings); it is freed with the last
        self._J, self._assembly, self._pattern = None, None, None
        self.forget_evaluations()

    #: bytes of one second-derivative intermediate per chunk of boxes (m^2 x chunk doubles)
    CHUNK_BYTES = 16 * 2**20

    def _evaluate_chunked(self, c_arr, m: int, with_params: bool):
        """Second-order evaluation over chunks of boxes: intermediates stay at ``CHUNK_BYTES`` however
        many boxes a rank holds, and second derivatives are kept only where non-zero
        (:class:`~.ad2.SparseSecond`).  Values and first derivatives are stored densely."""
        from .ad2 import SparseSecond
        n = self.nloc
        chunk = max(256, int(self.CHUNK_BYTES // (8 * m * m)))
        s_out, sc_out = {}, {}

        def store(out, key, val, sl, k):
            if not isinstance(val, AD2):
                val = AD2.const(val, m, k)
            if key not in out:
                out[key] = Evaluated(np.zeros(n), np.zeros((m, n)), SparseSecond(m, n))
            o = out[key]
            o.v[sl] = val.v
            o.g[val.idx, sl] = val.gc
            o.h.add_chunk(val.idx, val.hc, sl)

        for start in range(0, n, chunk):
            sl = slice(start, min(start + chunk, n))
            k = sl.stop - sl.start
            fields = {name: (v[sl] if np.ndim(v) == 1 and np.size(v) == n else v) for name, v in self.local_fields.items()}
            c = {t.name: AD2.variable(c_arr[a][sl], a, m, k) for a, t in enumerate(self.model.tracers)}
            p = self._params_ad(m, k, with_params)
            for key, val in self.model.local_terms(c, p, fields).items():
                store(s_out, key, val, sl, k)
            for key, spec in self.model.sinking.items():
                sc = spec.scale(p, fields)
                if not isinstance(sc, AD2) and np.ndim(sc) == 0:
                    sc = np.full(k, float(sc))
                store(sc_out, key, sc, sl, k)
        return s_out, sc_out

    def _op_apply_local(self, a: int, c_local: np.ndarray, scales, deriv=None):
        """Local part of ``Op_a c`` for sinking/none tracers (T handled by PETSc)."""
        t = self.model.tracers[a]
        if t.transport != "sinking":
            return np.zeros(self.nloc)
        sc = scales[t.sinking]
        Fc = self._sink_local[t.sinking] @ c_local
        if deriv is None:
            return sc.v * Fc
        i, j = deriv
        if j is None:
            return sc.g[self.nt + i] * Fc
        return sc.h[self.nt + i, self.nt + j] * Fc

    def _vec(self, arr2d) -> "PETSc.Vec":
        v = self.dgrid.create_vec(self.nt)
        v.getArray()[:] = np.asarray(arr2d).ravel()
        return v

    def residual(self, u) -> "PETSc.Vec":
        """``F(u)``; :class:`~bcp_hpc.errors.StateError` on every rank when the local terms cannot be
        evaluated at ``u`` on some rank (checked before any collective operation)."""
        try:
            s, scales = self.evaluate(u, full=False)
            failure = ""
        except (ArithmeticError, FloatingPointError) as exc:
            s, failure = None, str(exc)
        failures = [f for f in self.dgrid.comm.tompi4py().allgather(failure) if f]
        if failures:
            from ..errors import StateError
            raise StateError(f"the local terms cannot be evaluated at this state: {failures[0]}")
        c = self.local_state(u)
        out = np.empty((self.nt, self.nloc))
        x1 = self.Tp.createVecRight()
        y1 = self.Tp.createVecLeft()
        for a, t in enumerate(self.model.tracers):
            if t.transport == "T":
                x1.getArray()[:] = c[a]
                self.Tp.mult(x1, y1)
                out[a] = y1.getArray(readonly=True)
            else:
                out[a] = self._op_apply_local(a, c[a], scales)
            out[a] -= s[t.name].v
        x1.destroy()
        y1.destroy()
        return self._vec(out)

    def coupling(self, u) -> np.ndarray:
        """(nt, nt) bool: equation a depends on tracer b at state ``u`` (diagonal always; the union over
        ranks, so every rank sees the same pattern)."""
        s, _ = self.evaluate(u, full="jacobian")
        present = np.zeros((self.nt, self.nt), dtype=bool)
        for a, t in enumerate(self.model.tracers):
            for b in range(self.nt):
                present[a, b] = a == b or bool(np.any(s[t.name].g[b] != 0))
        from mpi4py import MPI
        return self.dgrid.comm.tompi4py().allreduce(present.astype(np.int64), op=MPI.SUM) > 0

    def linearise(self, u) -> Linearisation:
        """``F_u`` at ``u``.  The same Mat is refilled on later calls while the coupling pattern is
        unchanged, so a factorization can reuse its symbolic analysis."""
        s, scales = self.evaluate(u, full="jacobian")
        present = self.coupling(u)
        terms = {}
        for a, t in enumerate(self.model.tracers):
            if t.transport == "T":
                terms.setdefault((a, a), []).append(self.T)
            elif t.transport == "sinking":
                terms.setdefault((a, a), []).append(self._scaled_rows(self._sink_base[t.sinking], scales[t.sinking].v))
            for b in range(self.nt):
                if present[a, b]:
                    terms.setdefault((a, b), []).append(LocalDiagonal(-s[t.name].g[b]))
        changed = self._J is None or not np.array_equal(present, self._pattern)
        self._assembly, new_pattern = self.dgrid.kept_assembly(None if changed else self._assembly, terms, self.nt)
        changed = changed or new_pattern
        if changed and self._J is not None:
            self._J.destroy()
            self._J = None
        self._pattern = present
        self._J = self._assembly.matrix(terms, mat=self._J)
        return Linearisation(self._J, terms, present, changed)

    def _scaled_rows(self, rows, scale_local) -> sp.csr_matrix:
        """``diag(scale) @ rows`` for an operator holding only this rank's rows (natural order), with the
        scale given at this rank's boxes (``scale_local[j]`` for natural row ``loc[j]``)."""
        per_row = np.zeros(rows.shape[0])
        per_row[self.loc] = scale_local     # transient: the result keeps only the rows' entries
        # scaling the stored values keeps the pattern (a product would drop entries of zero scale)
        data = rows.data * np.repeat(per_row, np.diff(rows.indptr))
        return sp.csr_matrix((data, rows.indices, rows.indptr), shape=rows.shape, copy=False)

    def jacobian(self, u) -> "PETSc.Mat":
        """``F_u`` at ``u`` as a distributed PETSc matrix (see :meth:`linearise`)."""
        return self.linearise(u).matrix

    # ------------------------------------------------------------ parameter derivatives
    def _key(self, c_arr, full):
        return (hash(c_arr.tobytes()), tuple(p.value for p in self.model.parameters), tuple(self.param_names), full)

    def F_x(self, u, i: int):
        # the second-order evaluation when it is already there (Hessian calls), else first order only
        # (TAO's gradient calls at trial points need no m^2 n second derivatives)
        full_key = self._key(self.local_state(u), True)
        s, scales = self.evaluate(u, full=True if full_key in self._cache else "first")
        c = self.local_state(u)
        out = np.empty((self.nt, self.nloc))
        for a, t in enumerate(self.model.tracers):
            out[a] = self._op_apply_local(a, c[a], scales, (i, None)) - s[t.name].g[self.nt + i]
        return self._vec(out)

    def F_xx(self, u, i: int, j: int):
        s, scales = self.evaluate(u)
        c = self.local_state(u)
        out = np.empty((self.nt, self.nloc))
        for a, t in enumerate(self.model.tracers):
            out[a] = self._op_apply_local(a, c[a], scales, (i, j)) - s[t.name].h[self.nt + i, self.nt + j]
        return self._vec(out)

    def F_ux(self, u, i: int, v):
        """``(d F_u / d x_i) v``."""
        s, scales = self.evaluate(u)
        vl = self.local_state(v)
        out = np.empty((self.nt, self.nloc))
        pairs = self._nonzero_pairs(s)
        for a, t in enumerate(self.model.tracers):
            acc = self._op_apply_local(a, vl[a], scales, (i, None))
            for b in pairs[t.name][1][i]:
                acc = acc - s[t.name].h[b, self.nt + i] * vl[b]
            out[a] = acc
        return self._vec(out)

    def _nonzero_pairs(self, s):
        """Per tracer, the (b, c) index pairs of non-zero tracer-tracer and the b of non-zero
        tracer-parameter second derivatives (found once per evaluation; most are zero)."""
        cached = self._pairs
        if cached is not None and cached[0] is s:
            return cached[1]
        nt = self.nt
        pairs = {}
        for t in self.model.tracers:
            h = s[t.name].h
            nz = h.nonzero_mask() if hasattr(h, "nonzero_mask") else np.any(h != 0, axis=2)
            pairs[t.name] = ([(b, c) for b in range(nt) for c in range(nt) if nz[b, c]],
                             [[b for b in range(nt) if nz[b, nt + i]] for i in range(self.npar)])
        self._pairs = (s, pairs)
        return pairs

    def F_uu(self, u, v, w):
        s, _ = self.evaluate(u)
        vl = self.local_state(v)
        wl = self.local_state(w)
        out = np.zeros((self.nt, self.nloc))
        pairs = self._nonzero_pairs(s)
        for a, t in enumerate(self.model.tracers):
            h = s[t.name].h
            for b, c in pairs[t.name][0]:
                out[a] -= h[b, c] * vl[b] * wl[c]
        return self._vec(out)

    def is_linear(self, u) -> bool:
        """True if the local terms have no tracer-tracer curvature (checked at ``u``)."""
        s, _ = self.evaluate(u, full="tracers")
        local = all(not (v.h.nonzero_mask() if hasattr(v.h, "nonzero_mask") else np.any(v.h != 0, axis=2))
                    [:self.nt, :self.nt].any() for v in s.values())
        comm = self.dgrid.comm.tompi4py()
        from mpi4py import MPI
        return bool(comm.allreduce(local, op=MPI.LAND))

    # ------------------------------------------------------------ derivative check
    def check_derivatives(self, u, h: float = 1e-6) -> dict:
        """Compare the AD derivatives of the local terms with central finite differences.

        Returns the largest relative error of first derivatives (w.r.t. tracers and transformed
        parameters) and of second derivatives (parameter-parameter and tracer-parameter),
        each relative to the largest derivative magnitude of its kind (local boxes, max over ranks).
        """
        from mpi4py import MPI
        m = self.nt + self.npar
        n = self.nloc
        c0 = self.local_state(u).copy()
        ps = self.model.parameters
        x0 = ps.get_x()

        def terms(c_arr, x, with_grad):
            ps.set_x(x, check=False)
            mm = m if with_grad else 1
            c = {t.name: (AD2.variable(c_arr[a], a, mm, n) if with_grad else AD2.const(c_arr[a], 1, n))
                 for a, t in enumerate(self.model.tracers)}
            p = self._params_ad(mm, n, with_grad)
            s = self.model.local_terms(c, p, self.local_fields)
            out = {k: (v if isinstance(v, AD2) else AD2.const(v, mm, n)) for k, v in s.items()}
            ps.set_x(x0, check=False)
            return out

        ref = terms(c0, x0, True)
        err1 = err2 = 0.0
        for k in range(m):
            def shifted(sign):
                c = c0.copy()
                x = x0.copy()
                if k < self.nt:
                    c[k] += sign * h * max(1.0, float(np.abs(c0[k]).max()))
                else:
                    x[k - self.nt] += sign * h
                return terms(c, x, True)
            step = h * (max(1.0, float(np.abs(c0[k]).max())) if k < self.nt else 1.0)
            sp_, sm_ = shifted(+1), shifted(-1)
            for name, r in ref.items():
                fd1 = (sp_[name].v - sm_[name].v) / (2 * step)
                scale1 = max(float(np.abs(r.g).max()), 1e-300)
                err1 = max(err1, float(np.abs(fd1 - r.g[k]).max()) / scale1)
                fd2 = (sp_[name].g - sm_[name].g) / (2 * step)     # d/dk of the gradient = Hessian row k
                scale2 = max(float(np.abs(r.h).max()), 1e-300)
                err2 = max(err2, float(np.abs(fd2 - r.h[k]).max()) / scale2)
        comm = self.dgrid.comm.tompi4py()
        return {"first": comm.allreduce(err1, op=MPI.MAX), "second": comm.allreduce(err2, op=MPI.MAX)}

    # ------------------------------------------------------------ helpers
    def vec_from_natural(self, fields):
        return self.dgrid.vec_from_natural(fields)

    def to_natural(self, u, root: int | None = None):
        """State as natural-order arrays ``(nt, n)`` on every rank, or on rank ``root`` only (None elsewhere:
        what writing a file needs, without a whole copy on every rank)."""
        return self.dgrid.natural_from_vec(u, self.nt, root=root)

    def destroy(self):
        for o in (self.Tp, self._J):
            if o is not None:
                o.destroy()
        self.Tp = self._J = None
