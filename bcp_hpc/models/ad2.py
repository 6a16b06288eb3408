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
"""
from __future__ import annotations

import numpy as np


class AD2:
    __slots__ = ("v", "g", "h")
    __array_priority__ = 1000

    def __init__(self, v, g, h):
        self.v = v
        self.g = g
        self.h = h

    # ------------------------------------------------------------- constructors
    @staticmethod
    def const(value, m: int, n: int, order: int = 2) -> "AD2":
        v = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
        return AD2(v, np.zeros((m, n)), np.zeros((m, m, n)) if order >= 2 else None)

    @staticmethod
    def variable(value, index: int, m: int, n: int, order: int = 2) -> "AD2":
        a = AD2.const(value, m, n, order)
        a.g[index] = 1.0
        return a

    @property
    def m(self):
        return self.g.shape[0]

    # ------------------------------------------------------------- chain rule
    def _unary(self, f0, f1, f2) -> "AD2":
        """Apply f with value f0, first derivative f1, second f2 (arrays over boxes)."""
        g = f1 * self.g
        h = None if self.h is None else f1 * self.h + f2 * self.g[:, None, :] * self.g[None, :, :]
        return AD2(f0, g, h)

    def _lift(self, other):
        if isinstance(other, AD2):
            return other
        return AD2.const(other, self.m, self.v.shape[0], 1 if self.h is None else 2)

    def __add__(self, o):
        if not isinstance(o, AD2):
            return AD2(self.v + o, self.g, self.h)
        h = None if self.h is None or o.h is None else self.h + o.h
        return AD2(self.v + o.v, self.g + o.g, h)

    __radd__ = __add__

    def __neg__(self):
        return AD2(-self.v, -self.g, None if self.h is None else -self.h)

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        if not isinstance(o, AD2):
            o = np.asarray(o, dtype=float)
            return AD2(self.v * o, self.g * o, None if self.h is None else self.h * o)
        v = self.v * o.v
        g = self.g * o.v + o.g * self.v
        if self.h is None or o.h is None:
            return AD2(v, g, None)
        h = (self.h * o.v + o.h * self.v + self.g[:, None, :] * o.g[None, :, :]
             + o.g[:, None, :] * self.g[None, :, :])
        return AD2(v, g, h)

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
    h = None if a.h is None or b.h is None else np.where(cond, a.h, b.h)
    return AD2(np.where(cond, a.v, b.v), np.where(cond, a.g, b.g), h)


def value(a):
    return a.v if isinstance(a, AD2) else a


def take(a, idx):
    """The entries ``idx`` of ``a`` (a subset of boxes, e.g. the surface ones)."""
    if not isinstance(a, AD2):
        return np.asarray(a)[idx] if np.ndim(a) else a
    return AD2(a.v[idx], a.g[:, idx], None if a.h is None else a.h[:, :, idx])


def scatter(a, idx, n: int):
    """Inverse of :func:`take`: an ``n``-box value equal to ``a`` on ``idx`` and 0 elsewhere."""
    if not isinstance(a, AD2):
        out = np.zeros(n)
        out[idx] = a
        return out
    v = np.zeros(n)
    v[idx] = a.v
    g = np.zeros((a.g.shape[0], n))
    g[:, idx] = a.g
    h = None
    if a.h is not None:
        h = np.zeros(a.h.shape[:2] + (n,))
        h[:, :, idx] = a.h
    return AD2(v, g, h)


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

    def add_chunk(self, h_chunk, sl):
        """Store the chunk ``h_chunk`` (m, m, k) of boxes ``sl``."""
        nz = np.any(h_chunk != 0, axis=2)
        for i, j in zip(*np.nonzero(nz)):
            arr = self.d.get((i, j))
            if arr is None:
                arr = self.d[(i, j)] = np.zeros(self.n)
            arr[sl] = h_chunk[i, j]

    def nonzero_mask(self) -> np.ndarray:
        mask = np.zeros((self.m, self.m), dtype=bool)
        for i, j in self.d:
            mask[i, j] = True
        return mask
