"""Command-line interface: ``bcp-hpc <command>``.

PETSc options (``-prefix_option value``, single dash) may be mixed with the
command's own ``--flags``; they go to PETSc's options database, e.g.
``bcp-hpc run -steady_pc_factor_mat_solver_type superlu_dist -log_view``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

# One BLAS thread per MPI rank unless the user says otherwise: threaded BLAS in every rank
# oversubscribes the cores (small dense inverses become ten times slower).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from .. import __version__
from ..errors import BCPError
from .session import exit_now


def _split_petsc_args(argv):
    """Separate PETSc-style options (``-name [value]``) from argparse ones (``--name``)."""
    ours, petsc = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and not a.startswith("--") and len(a) > 2 and not a[1].isdigit():
            petsc.append(a)
            if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                petsc.append(argv[i + 1])
                i += 1
        else:
            ours.append(a)
        i += 1
    return ours, petsc


def build_parser():
    p = argparse.ArgumentParser(prog="bcp-hpc", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"bcp-hpc {__version__}")
    p.add_argument("--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    sub = p.add_subparsers(dest="command", required=True)

    from ..cycles import registry
    from ..experiments.description import WORLD_SOURCES
    info = sub.add_parser("info", help="PETSc/SLEPc/MPI versions, solver packages, ranks, cycles")
    info.add_argument("--options", action="store_true", help="list the package's own PETSc options")

    def run_flags(r, default_out, extra=("--sigma2", "--no-sensitivity-runs")):
        r.add_argument("--config", help="TOML run configuration (docs/configuration.md)")
        r.add_argument("--world", help=f"{' | '.join(WORLD_SOURCES)} (overrides the config)")
        r.add_argument("--data", help="OCIM2 data directory (for --world ocim2-mask)")
        r.add_argument("--operator", help="OCIM2 operator file (for --world ocim2)")
        r.add_argument("--inputs", action="append", help="forcing and observations: a `data build` file or an OCIM2 "
                       "data folder (repeat for several; later ones replace earlier fields)")
        r.add_argument("--out", default=default_out, help="output directory")
        r.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
        r.add_argument("--json", help="also write the run table to this JSON file")
        if "--sigma2" in extra:
            r.add_argument("--sigma2", help="sigma2 of the run (cycle P)" if r.prog.endswith("invert") else
                           "comma-separated sigma2 values (default 0,0.1,...,0.5)")
        if "--no-sensitivity-runs" in extra:
            r.add_argument("--no-sensitivity-runs", action="store_true", help="skip the kappa_l / kappa_p runs")
        if "--products" in extra:
            r.add_argument("--products", help="comma-separated NPP products (default [joint] npp_products)")

    r = sub.add_parser("run", help="the main job: ideal age + twin-experiment sigma2 sweep on a world (default embedded)")
    run_flags(r, "out/run")
    ex = sub.add_parser("experiment", help="the experiments of the registered cycles")
    exs = ex.add_subparsers(dest="experiment", required=True)
    for name, (cycle, exp) in sorted(registry.experiments().items()):
        ep = exs.add_parser(name, help=f"[{cycle.name}] {exp.help}")
        run_flags(ep, exp.default_out or f"out/{name}", exp.flags)
        if exp.gather:
            ep.add_argument("--gather", action="store_true", help="merge the tasks of a SLURM job array in --out "
                            "(each task's folder inside it) into the experiment's tables")
    inv = sub.add_parser("invert", help="one inversion of the configured cycle (default P; --cycle PCO: the joint "
                                        "P-C-O model)")
    run_flags(inv, "out/invert", ("--sigma2",))
    inv.add_argument("--cycle", choices=registry.names(), help="cycle to invert (overrides [model] cycle)")

    rp = sub.add_parser("report", help="report.html and the figures of a run folder (any run, experiment or "
                                       "scaling benchmark); no PETSc solve")
    rp.add_argument("run_dir", help="the --out folder of a run")
    rp.add_argument("--out", help="where report.html and figures/ go (default: the run folder)")
    from ..reports.figures.names import FIGURE_NAMES
    pl = sub.add_parser("plot", help="one figure of a run folder (PNG, SVG and the values it draws as JSON)")
    pl.add_argument("figure", choices=FIGURE_NAMES, help="; ".join(f"{k}: {v}" for k, v in FIGURE_NAMES.items()))
    pl.add_argument("run_dir", help="the --out folder of a run")
    pl.add_argument("--out", help="folder for the figure files (default: RUN_DIR/figures)")

    i = sub.add_parser("inspect", help="read an OCIM2 .mat or bcp-hpc HDF5 grid/operator file and check it")
    i.add_argument("file")
    i.add_argument("--tol", type=float, default=1e-8, help="mass-conservation tolerance (relative)")

    e = sub.add_parser("export", help="write a world's grid + transport operator (.mat OCIM2 layout or .h5)")
    e.add_argument("--world", default="embedded")
    e.add_argument("--data")
    e.add_argument("--operator")
    e.add_argument("--out", required=True, help="output file (.mat or .h5)")
    e.add_argument("--mat-version", default="v5", choices=["v5", "v7.3"])

    dp = sub.add_parser("data", help="build model-grid input files from public data sets; check data")
    dsub = dp.add_subparsers(dest="data", required=True)
    db = dsub.add_parser("build", help="recipe (TOML) -> one model-grid input file (HDF5, xarray-readable)")
    db.add_argument("recipe", nargs="?", help="recipe TOML (see bcp_hpc/data/build.py)")
    db.add_argument("--out", required=True, help="output HDF5 file")
    db.add_argument("--grid", help="override the recipe's grid: embedded | tiny | generated-2.5deg | generated-2deg | .mat | directory")
    db.add_argument("--synthetic", action="store_true", help="write the synthetic inputs (3 NPP products, PO4, T)")
    db.add_argument("--json", help="write a summary to this JSON file")
    dc = dsub.add_parser("check", help="validate a data directory (OCIM2 .mat fields) or an input file")
    dc.add_argument("path")
    dc.add_argument("--grid", help="grid to check against (default: the directory's mask / the file's grid)")
    dc.add_argument("--json", help="write the table to this JSON file")

    sl = sub.add_parser("slurm", help="SLURM job scripts")
    ssub = sl.add_subparsers(dest="slurm", required=True)
    sr = ssub.add_parser("render", help="render a SLURM script for a run from its config ([slurm] section) and flags")
    sr.add_argument("kind", help="a job kind (`bcp-hpc slurm render --list` shows them)", nargs="?")
    sr.add_argument("--list", action="store_true", help="list the job kinds")
    sr.add_argument("--cycle", choices=registry.names(), help="cycle of an invert job (overrides [model] cycle)")
    sr.add_argument("--config", help="run configuration (TOML); its [slurm] section gives the defaults")
    sr.add_argument("--world", help="world when no config is given (default embedded)")
    sr.add_argument("--out", help="script file to write (default: print)")
    sr.add_argument("--run-out", help="the run's output directory inside the job (default runs/KIND-JOBID)")
    sr.add_argument("--nodes", type=int)
    sr.add_argument("--ranks-per-node", dest="ranks_per_node", type=int)
    sr.add_argument("--mem", help="memory per node, e.g. 64G")
    sr.add_argument("--time", help="wall time, e.g. 04:00:00")
    sr.add_argument("--partition")
    sr.add_argument("--account")
    sr.add_argument("--module", action="append", help="a `module load` line (repeatable)")
    sr.add_argument("--venv", help="virtual environment to activate")
    sr.add_argument("--launcher", help="srun (default) or e.g. 'mpirun -n 16'")

    pl = sub.add_parser("plan", help="predict memory, ranks and time for 1 and 0.5 degree grids (4 or 12 tracers)")
    pl.add_argument("--csv", help="rows of `bcp-hpc bench scaling` to fit (default: the package's measured defaults)")
    pl.add_argument("--mem-per-node", default="256G", help="memory per node (default 256G)")
    pl.add_argument("--ranks-per-node", type=int, default=64, help="MPI ranks per node (default 64)")
    pl.add_argument("--json", help="write the table to this JSON file")
    pl.add_argument("--joint", action="append", metavar="FILE",
                    help="a `bcp-hpc bench joint --json` file (repeatable): predict joint P-C-O evaluations from it")

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True)
    bo = bsub.add_parser("operators", help="synthetic circulation on the OCIM2 mask: assembly, ideal age")
    bo.add_argument("--data", help="OCIM2 data directory (default ../shared/data/ocim2_91x180x24 if present)")
    bo.add_argument("--generated", action="store_true", help="use a generated 2 degree world even if data exist")
    bo.add_argument("--json", help="write figures to this JSON file")
    bp = bsub.add_parser("pmodel", help="P-model factor/solve/sensitivities at OCIM2 size vs the monolithic baseline")
    bp.add_argument("--data", help="OCIM2 data directory")
    bp.add_argument("--generated", action="store_true", help="generated 2 degree world even if data exist")
    bp.add_argument("--embedded", action="store_true", help="the small embedded world (quick check)")
    bp.add_argument("--no-scipy", action="store_true", help="skip the SciPy splu reference")
    bp.add_argument("--monolithic", action="store_true", help="package path = monolithic LU (not the structured solver)")
    bp.add_argument("--solver", help="package path: direct | structured | ooc | iterative | auto (overrides --monolithic)")
    bp.add_argument("--json", help="write figures to this JSON file")
    bd = bsub.add_parser("data", help="parallel loading of an input file: hyperslab / scatter / whole")
    bd.add_argument("--data", help="OCIM2 data directory")
    bd.add_argument("--generated", action="store_true", help="generated 2 degree grid even if data exist")
    bd.add_argument("--json", help="write figures to this JSON file")
    bs = bsub.add_parser("scaling", help="strong + size scaling of the P-model steady state (and the joint model's "
                                         "evaluation) over a ladder of grids")
    bs.add_argument("--rungs", default="embedded,ocim2", help="comma list of embedded, ocim2, 2deg48, 1deg48")
    bs.add_argument("--solver", default="direct",
                    help="comma list of direct, structured, ooc, iterative, auto (the P model) and joint (the joint "
                         "P-C-O model's cold state and objective evaluation with gradient and Hessian)")
    bs.add_argument("--max-ranks", type=int, default=2, help="rank counts 1, 2, 4, ... up to this")
    bs.add_argument("--csv", help="append rows to this CSV (default bench-scaling.csv)")
    bs.add_argument("--json", help="write the summary to this JSON file (and a PNG plot beside it)")
    bs.add_argument("--plot", help="plot file (PNG)")
    bs.add_argument("--single", action="store_true", help="one measurement on the current ranks (used by the driver)")
    bs.add_argument("--assemble-only", action="store_true",
                    help="stop after the world and the Jacobian's assembly (memory per rank of those phases)")
    bj = bsub.add_parser("joint", help="one joint P-C-O objective evaluation (state, 21 sensitivities, adjoint "
                                        "Hessian): block-triangular solver vs the monolithic 11-tracer LU")
    bj.add_argument("--world", help="embedded (default) | tiny | generated-2.5deg | generated-2deg | ocim2-mask")
    bj.add_argument("--baseline", action="store_true", help="also run the monolithic LU in the same process")
    bj.add_argument("--compare-newton", action="store_true",
                    help="also run the cold state and the evaluation with Newton on the whole system (-newton global) "
                         "in the same process and report the speedup of Newton by components")
    bj.add_argument("--json", help="write figures to this JSON file")
    bi = bsub.add_parser("invert", help="a full 4-parameter inversion: iterations, time, memory")
    bi.add_argument("--ocim2", action="store_true", help="OCIM2-size problem (real mask and PO4 when present)")
    bi.add_argument("--world", default="embedded", help="world without --ocim2: embedded (default) | tiny | generated-2.5deg | generated-2deg")
    bi.add_argument("--data", help="OCIM2 data directory")
    bi.add_argument("--solver", help="steady-state path: direct | structured (default, as runs) | iterative | ooc | auto")
    bi.add_argument("--baseline", action="store_true",
                    help="also run the first release's formulation in the same process (monolithic LU, 10 "
                         "second-order solves per Hessian, TAO interpolation start) and report speedup_vs_baseline")
    bi.add_argument("--json", help="write figures to this JSON file")
    return p


#: command -> (module relative to bcp_hpc.cli, function); modules are imported lazily
COMMANDS = {
    "info": (".info", "run"),
    "run": (".pipeline", "run"),
    "experiment": (".pipeline", "experiment"),
    "invert": (".pipeline", "invert"),
    "inspect": (".files", "inspect"),
    "report": (".report", "report"),
    "plot": (".report", "plot"),
    "export": (".files", "export"),
    "data build": (".data", "data_build"),
    "slurm render": (".slurm", "run"),
    "plan": (".plan", "run"),
    "data check": (".data", "data_check"),
    "bench operators": ("..bench.operators", "run"),
    "bench pmodel": ("..bench.pmodel", "run"),
    "bench invert": ("..bench.invert", "run"),
    "bench joint": ("..bench.joint", "run"),
    "bench data": ("..bench.data", "run"),
    "bench scaling": ("..bench.scaling", "run"),
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, petsc = _split_petsc_args(argv)
    sys.argv = [sys.argv[0]] + petsc  # petsc4py.init reads sys.argv
    from ..log import mpi_rank, setup_logging
    from .runinfo import set_command
    from .session import Interrupted, end_interrupted, install_signal_handlers
    set_command(argv)
    install_signal_handlers()
    log = logging.getLogger("bcp_hpc")
    try:
        parser = build_parser()
        args = parser.parse_args(ours)
    except BCPError as exc:          # e.g. a broken cycle plug-in in $BCP_CYCLE_PATH
        setup_logging("INFO")
        log.error("%s", exc)
        return 2
    except Interrupted as exc:       # before anything ran: nothing to keep
        end_interrupted(exc, None, "", mpi_rank())
    setup_logging(args.log_level)
    if "-help" in petsc:
        from ..solvers.options import options_table
        print(options_table())
    herald, where = None, ""
    try:
        from .paths import check_outputs
        check_outputs(args)
        out = getattr(args, "out", None)
        where = f"; the last checkpoint in {out} is kept, continue with --resume" if out else ""
        if mpi_rank() == 0:
            from .session import start_herald
            herald = start_herald(where)
        key = {"bench": lambda: f"bench {args.bench}", "data": lambda: f"data {args.data}",
               "slurm": lambda: f"slurm {args.slurm}"}.get(args.command, lambda: args.command)()
        module, func = COMMANDS[key]
        import importlib
        status = getattr(importlib.import_module(module, __package__), func)(args)
        if mpi_rank() == 0 and petsc:
            from .session import report_unused_options
            report_unused_options([a[1:] for a in petsc if a.startswith("-")])
        return status
    except Interrupted as exc:
        end_interrupted(exc, herald, where, mpi_rank())
    except BCPError as exc:
        log.error("%s", exc)
        return _end_on_error(2)
    except BrokenPipeError:
        # the reader of stdout went away (`bcp-hpc plan | head`): end quietly, with the shell's status
        # of a process ended by SIGPIPE, and without flushing into the closed pipe again
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        exit_now(141)
    except Exception:  # noqa: BLE001 - on several ranks, one failing rank must not leave others hanging
        import traceback
        traceback.print_exc()
        return _end_on_error(1)
    finally:
        if herald is not None:
            herald.close()


def _size() -> int:
    import os
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                pass
    return 1


def _end_on_error(status: int) -> int:
    if _size() > 1:
        exit_now(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
