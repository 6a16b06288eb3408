"""Assembly of the Schur complement ``S = J_KK - J_KE C_E^-1 J_EK`` in natural-order block terms.

``C_E^-1`` is the per-water-column inverse of the eliminated tracers' column-local blocks, and
the couplings ``J_KE``, ``J_EK`` are diagonal, so ``S`` has the sparsity of ``J_KK`` plus one
dense (lower, for sinking particles) column pattern per source box.  The kept columns of partly
eliminated tracers are extra fields of ``S``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...grid.distributed import LocalDiagonal
from .kept import global_block


def schur_terms(terms: dict, kept_fields: list, eliminated: list, diag: dict, cinv: dict, lower: dict,
                columns, loc: np.ndarray, n: int) -> dict:
    """Block terms ``(i, j) -> [...]`` of S between the kept tracers (indices into ``kept_fields``)."""
    blocks = {}
    for i, a in enumerate(kept_fields):
        for j, b in enumerate(kept_fields):
            blk = list(terms.get((a, b), []))
            for e in eliminated:
                dKe = diag.get((a, e))
                deK = diag.get((e, b))
                if dKe is None or deK is None or not np.any(dKe) or not np.any(deK):
                    continue
                # -diag(J_ae) C_e^-1 diag(J_eb): only columns j with J_eb[j] != 0
                rows, cols, vals = [], [], []
                for K, idx in columns.groups.items():
                    Minv = cinv[e][K]                             # (ncol, K, K)
                    w = deK[idx]                                  # (ncol, K)
                    cc, jj = np.nonzero(w)
                    if cc.size == 0:
                        continue
                    # all rows of the column for each nonzero (cc, jj)
                    val = -dKe[idx[cc]] * Minv[cc, :, jj] * w[cc, jj][:, None]     # (nnz, K)
                    keep = np.ones(val.shape, dtype=bool)
                    if lower[e]:
                        # a sinking operator's column block is lower triangular, so is its inverse: rows
                        # above the source box are structural zeros, left out of S (MUMPS' analysis
                        # crashed intermittently on 1 rank with ~190k explicit zeros)
                        keep = np.arange(K)[None, :] >= jj[:, None]
                    rows.append(idx[cc][keep])
                    cols.append(np.broadcast_to(idx[cc, jj][:, None], val.shape)[keep])
                    vals.append(val[keep])
                if rows:
                    r = loc[np.concatenate(rows)]
                    c = loc[np.concatenate(cols)]
                    blk.append(sp.csr_matrix((np.concatenate(vals), (r, c)), shape=(n, n)))
            blocks[(i, j)] = blk
    return blocks


def add_kept_blocks(blocks: dict, terms: dict, S_fields: list, kept: dict, kept_diag: dict, volume: np.ndarray,
                    loc: np.ndarray, comm=None):
    """The kept columns of partly eliminated tracers as extra fields of S.

    Field ``e`` of S: ``J_ee`` between its kept boxes (couplings to non-kept boxes moved to the
    diagonal by their volume-weighted sums, so ``1^T V`` is conserved), identity rows at the other
    boxes, and the diagonal couplings of ``e`` with the kept tracers."""
    n = volume.size
    for i, e in enumerate(S_fields):
        if e not in kept:
            continue
        keep = kept[e]
        M = global_block(terms, e, n, loc)
        Dk = sp.diags(keep.astype(float))
        inner = sp.csr_matrix(Dk @ M @ Dk)
        # what the dropped entries of each kept column j carry, the sum over rows i outside the kept
        # set of V_i M[i, j], goes to its diagonal
        # (a sum over every rank's rows)
        dropped = np.ascontiguousarray(M.T @ np.where(keep, 0.0, volume), dtype=float)
        if comm is not None:
            from mpi4py import MPI
            comm.Allreduce(MPI.IN_PLACE, dropped, op=MPI.SUM)
        dropped /= volume
        blocks[(i, i)] = [inner, np.where(keep, dropped, 1.0)]
        for j, b in enumerate(S_fields):
            if b == e:
                continue
            for key, (r, c) in (((e, b), (i, j)), ((b, e), (j, i))):
                if key in kept_diag:
                    blocks.setdefault((r, c), []).append(LocalDiagonal(kept_diag[key]))
