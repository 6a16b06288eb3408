"""Timing and memory bookkeeping shared by the benchmarks."""
from __future__ import annotations

import json
import time

from ..io.atomic import write_text_atomic
from ..log import rprint
from ..memory import peak_rss_bytes
from ..petsc_env import import_petsc4py

PETSc = import_petsc4py()


class PhaseTimer:
    """Wall time per phase (max over ranks) and peak RSS after each phase: of the largest rank
    (``peak_rss``) and summed over ranks (``peak_rss_total``: each rank's own peak, so an upper
    bound of what the ranks held at one time)."""

    def __init__(self, comm=None):
        self.comm = (comm or PETSc.COMM_WORLD).tompi4py()
        self.seconds = {}
        self.peak_rss = {}
        self.peak_rss_total = {}
        self._stage = None

    def phase(self, name: str):
        timer = self

        class _Ctx:
            def __enter__(self_inner):
                timer.comm.Barrier()
                self_inner.t0 = time.perf_counter()
                return self_inner

            def __exit__(self_inner, *exc):
                timer.comm.Barrier()
                dt = time.perf_counter() - self_inner.t0
                timer.seconds[name] = timer.seconds.get(name, 0.0) + timer.comm.allreduce(dt, op=_max())
                peak = peak_rss_bytes()
                timer.peak_rss[name] = timer.comm.allreduce(peak, op=_max())
                timer.peak_rss_total[name] = timer.comm.allreduce(peak, op=_sum())
                return False

        return _Ctx()

    def report(self, title: str):
        rprint(f"{title}")
        for k, v in self.seconds.items():
            rprint(f"  {k:<28s} {v:10.3f} s   peak RSS {self.peak_rss[k] / 2**20:10.1f} MiB (largest rank)")


def _max():
    from mpi4py import MPI
    return MPI.MAX


def _sum():
    from mpi4py import MPI
    return MPI.SUM


def write_json(path: str | None, payload: dict, comm=None):
    comm = (comm or PETSc.COMM_WORLD)
    if path and comm.getRank() == 0:
        write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
        rprint(f"wrote {path}")
