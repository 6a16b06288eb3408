"""Flexible GMRES run in lockstep for a block of right-hand sides.

Every right-hand side has its own Krylov basis and Hessenberg matrix, but all are advanced
together, so each preconditioner application is one block solve (``MatMatSolve``) with the
Schur factor.  Arrays are this rank's rows in the layout (nt, nloc, nrhs).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def block_fgmres(B, apply, precondition, dots, tol, max_its: int):
    """One GMRES cycle for B (nt, nloc, nrhs) to relative residual ``tol`` (a scalar or one per column).

    ``apply(X)``: the operator on a block; ``precondition(V)``: the right preconditioner ``P^-1``;
    ``dots(X, Ys)``: global inner products per column, shape (len(Ys), nrhs).  The preconditioned
    basis ``Z = P^-1 V`` is kept (flexible form, ``x = Z y``): an inexact ``P^-1`` does not make the
    estimate wrong, and no last block solve is needed.  Returns (X, iterations)."""
    nr = B.shape[2]
    beta = np.sqrt(dots(B, [B]))[0]
    safe = np.where(beta > 0, beta, 1.0)
    V = [B / safe]
    Z = []
    tmp = np.empty_like(B)
    H = np.zeros((nr, max_its + 1, max_its))
    rel = np.ones(nr)
    for j in range(max_its):
        Z.append(precondition(V[j]))
        W = apply(Z[j])
        for _ in range(2):                          # classical Gram-Schmidt, twice (CGS2: as stable as
            h = dots(W, V[:j + 1])                  # modified GS, one reduction per pass)
            H[:, :j + 1, j] += h.T
            for i in range(j + 1):
                np.multiply(V[i], h[i], out=tmp)
                W -= tmp
        hn = np.sqrt(dots(W, [W]))[0]
        H[:, j + 1, j] = hn
        W /= np.where(hn > 0, hn, 1.0)
        V.append(W)
        ys = []
        for r in range(nr):
            e1 = np.zeros(j + 2)
            e1[0] = beta[r]
            y, *_ = np.linalg.lstsq(H[r, :j + 2, :j + 1], e1, rcond=None)
            ys.append(y)
            rel[r] = np.linalg.norm(e1 - H[r, :j + 2, :j + 1] @ y) / safe[r]
        log.debug("structured GMRES %d: max relative residual %.3e", j + 1, rel.max())
        if np.all(rel <= tol) or j == max_its - 1:
            break
    X = np.zeros_like(B)
    for r in range(nr):
        for i in range(len(ys[r])):
            X[:, :, r] += Z[i][:, :, r] * ys[r][i]
    return X, j + 1
