"""``bcp-hpc report RUN_DIR`` and ``bcp-hpc plot FIGURE RUN_DIR``: figures and the HTML report of a
finished run, on one process (no PETSc solve)."""
from __future__ import annotations

import os

from ..log import mpi_rank, rprint


def report(args):
    from ..reports.html import write_report
    if mpi_rank() != 0:
        return 0
    path = write_report(args.run_dir, args.out)
    rprint(f"report: {path}")
    return 0


def plot(args):
    from ..errors import InputError
    from ..reports.figures.catalog import BUILDERS, NotApplicable
    from ..reports.rundir import read_run
    if mpi_rank() != 0:
        return 0
    folder = read_run(args.run_dir)
    out = os.path.abspath(args.out or os.path.join(args.run_dir, "figures"))
    try:
        figures = BUILDERS[args.figure](folder, out, ("png", "svg"))
    except NotApplicable as exc:
        raise InputError(f"no {args.figure} figure for this run: {exc}", path=args.run_dir) from None
    for name, what in folder.problems:
        rprint(f"note: {name}: {what}")
    for f in figures:
        rprint(f"{f.name}: " + ", ".join(f.paths))
    return 0
