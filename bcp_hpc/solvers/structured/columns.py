"""Water-column bookkeeping of the structured solver: which local boxes form each water column,
and the dense per-column inverses of the column-local part of an eliminated tracer's block.

Every water column lives on one rank (the layout distributes whole columns), so none of this
needs communication.
"""
from __future__ import annotations

import numpy as np


class WaterColumns:
    """This rank's water columns, grouped by length.

    ``start[i]``: local index of the top box of box i's column; ``pos[i]``: its depth position in the
    column; ``groups[K]``: (ncol, K) local indices of the columns with K boxes."""

    def __init__(self, box_k_local: np.ndarray):
        k = np.asarray(box_k_local)
        n = k.size
        starts = np.flatnonzero(k == 0)
        lens = np.diff(np.r_[starts, n])
        self.n = n
        self.start = np.repeat(starts, lens)
        self.pos = np.arange(n) - self.start
        self.groups = {}
        for K in np.unique(lens):
            st = starts[lens == K]
            self.groups[int(K)] = st[:, None] + np.arange(K)[None, :]
        self._group_of = np.zeros(n, dtype=np.int64)
        self._slot_of = np.zeros(n, dtype=np.int64)
        for K, idx in self.groups.items():
            self._group_of[idx.ravel()] = K
            self._slot_of[idx.ravel()] = np.repeat(np.arange(idx.shape[0]), K)

    def inverses(self, rows, cols, vals) -> dict:
        """Dense inverses of the column blocks of the local matrix given by COO triplets whose entries all
        lie inside water columns: ``{K: (ncol, K, K)}``."""
        blocks = {K: np.zeros((idx.shape[0], K, K)) for K, idx in self.groups.items()}
        for K in self.groups:
            sel = self._group_of[rows] == K
            np.add.at(blocks[K], (self._slot_of[rows[sel]], self.pos[rows[sel]], self.pos[cols[sel]]), vals[sel])
        return {K: np.linalg.inv(b) for K, b in blocks.items()}

    def apply(self, inverses: dict, X: np.ndarray, transpose: bool = False) -> np.ndarray:
        """``C^-1 X`` (``C^-T X``) column by column, X of shape (n,) or (n, nrhs)."""
        out = np.empty_like(X)
        for K, idx in self.groups.items():
            Minv = inverses[K]                             # (ncol, K, K)
            if transpose:
                Minv = Minv.transpose(0, 2, 1)
            blk = X[idx]                                   # (ncol, K[, nrhs])
            # batched matmul: ~14x faster than the equivalent einsum for several right-hand sides
            out[idx] = (Minv @ blk[:, :, None])[:, :, 0] if X.ndim == 1 else Minv @ blk
        return out
