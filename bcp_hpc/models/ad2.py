"""Second-order forward-mode automatic differentiation over arrays ("hyper-dual" numbers).

An :class:`AD2` holds a value ``v`` (shape ``(n,)``: one entry per box), its
gradient ``g`` (``(m, n)``) and Hessian ``h`` (``(m, m, n)``, or None in first-order mode,
which a Jacobian needs and which saves the ``m^2 n`` arrays) with respect to
``m`` seeded variables (tracers and transformed parameters).  Local
source-minus-sink terms written with ``+ - * / **``, :func:`exp`, :func:`log`,
:func:`tanh` and :func:`where` get exact first and second derivatives (no
truncation error, unlike finite differences; unlike complex step, second
derivatives and mixed tracer-parameter terms come for free).  Models never
hand-write derivatives.

Why this choice: the local terms are pointwise in space, so the derivative
arrays are small (``m`` is the number of tracers plus optimised parameters),
evaluation is vectorised NumPy on each rank's own boxes, and the result is
exact to round-off.

Storage is *compact*: each value carries only the variables it depends on
(``idx``, sorted), with ``gc`` of shape ``(r, n)`` and ``hc`` of ``(r, r, n)``
for its ``r`` active variables; operations work on the union of their
operands' sets.  An intermediate of the joint model (32 variables) typically
depends on 2-6 of them, so second derivatives cost ``r^2 n`` instead of
``m^2 n``.  ``g`` and ``h`` give the dense ``(m, n)`` / ``(m, m, n)`` arrays
on demand.
"""
from __future__ import annotations

import numpy as np


class AD2:
    __slots__ = ("_g", "gc", "hc", "idx", "m", "v")
    __array_priority__ = 1000

    def __init__(self, v, idx, gc, hc, m: int):
        self.v = v
        self.idx = idx
        self.gc = gc
        self.hc = hc
        self.m = m
        self._g = None

    # ------------------------------------------------------------- constructors
    @staticmethod
    def const(value, m: int, n: int, order: int = 2) -> AD2:
        v = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
        return AD2(v, _EMPTY, np.zeros((0, n)), np.zeros((0, 0, n)) if order >= 2 else None, m)

    @staticmethod
    def variable(value, index: int, m: int, n: int, order: int = 2) -> AD2:
        v = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
        return AD2(v, np.array([index]), np.ones((1, n)), np.zeros((1, 1, n)) if order >= 2 else None, m)

    @property
    def order(self) -> int:
        return 1 if self.hc is None else 2

    @property
    def g(self) -> np.ndarray:
        """Dense first derivatives ``(m, n)``."""
        if self._g is None:
            g = np.zeros((self.m, self.v.shape[0]))
            g[self.idx] = self.gc
            self._g = g
        return self._g

    @property
    def h(self):
        """Dense second derivatives ``(m, m, n)`` (None in first-order mode)."""
        if self.hc is None:
            return None
        h = np.zeros((self.m, self.m, self.v.shape[0]))
        h[np.ix_(self.idx, self.idx)] = self.hc
        return h

    # ------------------------------------------------------------- chain rule
    def _unary(self, f0, f1, f2) -> AD2:
        """Apply f with value f0, first derivative f1, second f2 (arrays over boxes)."""
        gc = f1 * self.gc
        hc = None if self.hc is None else f1 * self.hc + f2 * self.gc[:, None, :] * self.gc[None, :, :]
        return AD2(f0, self.idx, gc, hc, self.m)

    def _lift(self, other):
        if isinstance(other, AD2):
            return other
        return AD2.const(other, self.m, self.v.shape[0], self.order)

    def __add__(self, o):
        if not isinstance(o, AD2):
            return AD2(self.v + o, self.idx, self.gc, self.hc, self.m)
        idx, (ga, ha), (gb, hb) = _union(self, o)
        h = None if ha is None or hb is None else ha + hb
        return AD2(self.v + o.v, idx, ga + gb, h, self.m)

    __radd__ = __add__

    def __neg__(self):
        return AD2(-self.v, self.idx, -self.gc, None if self.hc is None else -self.hc, self.m)

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        if not isinstance(o, AD2):
            o = np.asarray(o, dtype=float)
            return AD2(self.v * o, self.idx, self.gc * o, None if self.hc is None else self.hc * o, self.m)
        idx, (ga, ha), (gb, hb) = _union(self, o)
        v = self.v * o.v
        g = ga * o.v + gb * self.v
        if ha is None or hb is None:
            return AD2(v, idx, g, None, self.m)
        cross = ga[:, None, :] * gb[None, :, :]
        h = ha * o.v + hb * self.v + cross + cross.transpose(1, 0, 2)
        return AD2(v, idx, g, h, self.m)

    __rmul__ = __mul__

    def reciprocal(self):
        inv = 1.0 / self.v
        return self._unary(inv, -inv ** 2, 2 * inv ** 3)

    def __truediv__(self, o):
        if not isinstance(o, AD2):
            return self * (1.0 / np.asarray(o, dtype=float))
        return self * o.reciprocal()

    def __rtruediv__(self, o):
        return self.reciprocal() * o

    def __pow__(self, p):
        if isinstance(p, AD2):
            return exp(p * log(self))
        p = float(p)
        return self._unary(self.v ** p, p * self.v ** (p - 1), p * (p - 1) * self.v ** (p - 2))


_EMPTY = np.zeros(0, dtype=np.int64)


def _embed(a: AD2, idx: np.ndarray):
    """``a``'s derivative arrays in the variable set ``idx`` (a superset of ``a.idx``)."""
    if a.idx.size == idx.size:
        return a.gc, a.hc
    n = a.v.shape[0]
    pos = np.searchsorted(idx, a.idx)
    g = np.zeros((idx.size, n))
    g[pos] = a.gc
    h = None
    if a.hc is not None:
        h = np.zeros((idx.size, idx.size, n))
        h[np.ix_(pos, pos)] = a.hc
    return g, h


def _union(a: AD2, b: AD2):
    if a.idx.size == b.idx.size and np.array_equal(a.idx, b.idx):
        idx = a.idx
    else:
        idx = np.union1d(a.idx, b.idx)
    return idx, _embed(a, idx), _embed(b, idx)


def exp(a):
    if not isinstance(a, AD2):
        return np.exp(a)
    e = np.exp(a.v)
    return a._unary(e, e, e)


def log(a):
    if not isinstance(a, AD2):
        return np.log(a)
    return a._unary(np.log(a.v), 1.0 / a.v, -1.0 / a.v ** 2)


def tanh(a):
    if not isinstance(a, AD2):
        return np.tanh(a)
    t = np.tanh(a.v)
    d1 = 1 - t ** 2
    return a._unary(t, d1, -2 * t * d1)


def where(cond, a, b):
    """Select boxwise between two AD2 (or constants); derivatives follow the chosen branch."""
    cond = np.asarray(cond, dtype=bool)
    ref = a if isinstance(a, AD2) else b
    a = ref._lift(a)
    b = ref._lift(b)
    idx, (ga, ha), (gb, hb) = _union(a, b)
    h = None if ha is None or hb is None else np.where(cond, ha, hb)
    return AD2(np.where(cond, a.v, b.v), idx, np.where(cond, ga, gb), h, ref.m)


def value(a):
    return a.v if isinstance(a, AD2) else a


def take(a, idx):
    """The entries ``idx`` of ``a`` (a subset of boxes, e.g. the surface ones)."""
    if not isinstance(a, AD2):
        return np.asarray(a)[idx] if np.ndim(a) else a
    return AD2(a.v[idx], a.idx, a.gc[:, idx], None if a.hc is None else a.hc[:, :, idx], a.m)


def scatter(a, idx, n: int):
    """Inverse of :func:`take`: an ``n``-box value equal to ``a`` on ``idx`` and 0 elsewhere."""
    if not isinstance(a, AD2):
        out = np.zeros(n)
        out[idx] = a
        return out
    v = np.zeros(n)
    v[idx] = a.v
    g = np.zeros((a.gc.shape[0], n))
    g[:, idx] = a.gc
    h = None
    if a.hc is not None:
        h = np.zeros(a.hc.shape[:2] + (n,))
        h[:, :, idx] = a.hc
    return AD2(v, a.idx, g, h, a.m)


class SparseSecond:
    """Second derivatives of an evaluated term kept only for the variable pairs that are non-zero
    somewhere: ``h[i, j]`` is an ``n``-vector (a shared zero vector when the pair vanishes).  For the
    joint model (11 tracers + 21 parameters) fewer than a tenth of the 32 x 32 pairs are non-zero,
    so this is what makes its derivative storage fit on the embedded world."""

    def __init__(self, m: int, n: int):
        self.m, self.n = m, n
        self.d = {}
        self._zeros = np.zeros(n)
        self._zeros.setflags(write=False)

    def __getitem__(self, ij):
        return self.d.get(ij, self._zeros)

    def add_chunk(self, idx, hc, sl):
        """Store the compact second derivatives ``hc`` (r, r, k) of variables ``idx`` for boxes ``sl``."""
        nz = np.any(hc != 0, axis=2)
        for a, b in zip(*np.nonzero(nz)):
            key = (int(idx[a]), int(idx[b]))
            arr = self.d.get(key)
            if arr is None:
                arr = self.d[key] = np.zeros(self.n)
            arr[sl] = hc[a, b]

    def nonzero_mask(self) -> np.ndarray:
        mask = np.zeros((self.m, self.m), dtype=bool)
        for i, j in self.d:
            mask[i, j] = True
        return mask
