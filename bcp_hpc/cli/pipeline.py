"""``bcp-hpc run``, ``bcp-hpc experiment NAME`` and ``bcp-hpc invert``: a run description from the config
file and flags, then the cycle's experiment through the one runner."""
from __future__ import annotations

import os

from ..cycles import registry
from ..errors import ConfigError
from ..experiments.description import RunDescription
from ..io.atomic import remove_stale_temporaries, write_text_atomic
from ..io.results import write_gridded
from ..log import rprint
from ..petsc_env import import_petsc4py
from ..solvers.options import OptionsScope
from .runinfo import write_run_info

PETSc = import_petsc4py()


def parse_floats(text: str, flag: str) -> list:
    """``"0,0.1,0.5"`` -> [0.0, 0.1, 0.5]; a clear error for anything else."""
    out = []
    for item in text.split(","):
        try:
            out.append(float(item))
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: expected comma-separated numbers, e.g. 0,0.1,0.2") from None
    return out


def description(args, cycle: str | None = None) -> RunDescription:
    """The run description of a command: defaults < ``--config`` file < flags."""
    over = {}
    if getattr(args, "world", None):
        over.setdefault("world", {})["source"] = args.world
    if getattr(args, "data", None) or getattr(args, "operator", None):
        over.setdefault("world", {})["path"] = os.path.abspath(args.data or args.operator)
    if getattr(args, "world", None) == "ocim2-mask" and not (args.data or args.operator):
        from ..operators.world import default_shared_data_dir
        over["world"]["path"] = default_shared_data_dir() or ""
    if getattr(args, "inputs", None):
        over.setdefault("world", {})["inputs"] = [os.path.abspath(p) for p in args.inputs]
    cycle = cycle or getattr(args, "cycle", None)
    if cycle:
        over.setdefault("model", {})["cycle"] = cycle
    if getattr(args, "sigma2", None):
        values = parse_floats(args.sigma2, "--sigma2")
        if args.command == "invert":
            if len(values) != 1:
                raise ConfigError(f"--sigma2 {args.sigma2!r}: `invert` runs one sigma2 (the sweep is "
                                  "`bcp-hpc experiment sigma2-sweep`)")
            over.setdefault("model", {})["sigma2"] = values[0]
        else:
            over.setdefault("experiment", {})["sigma2_values"] = values
    if getattr(args, "products", None) is not None:
        names = [p.strip() for p in args.products.split(",")]
        if not all(names):
            raise ConfigError(f"--products {args.products!r}: expected comma-separated product names, e.g. vgpm,cbpm")
        over.setdefault("joint", {})["npp_products"] = names
    if getattr(args, "no_sensitivity_runs", False):
        over.setdefault("experiment", {})["sensitivity_runs"] = False
    if getattr(args, "out", None):
        over.setdefault("output", {})["dir"] = os.path.abspath(args.out)
    run = RunDescription.load(args.config, over)
    _refuse_or_note_foreign_keys(run)
    return run


def _refuse_or_note_foreign_keys(run: RunDescription):
    """Settings of another cycle do nothing in this run: from a flag that is an error, from a config file
    (which may describe several cycles' runs) a printed note."""
    foreign = run.foreign_keys()
    mine = run.cycle.name
    flags = [f"{key} (cycle {', '.join(owners)})" for source, key, owners in foreign if source == "command line"]
    if flags:
        raise ConfigError(f"the command line sets {'; '.join(flags)}, which cycle {mine} does not use")
    for source, key, owners in foreign:
        rprint(f"note: {source}: {key} is a setting of cycle {', '.join(owners)}; not used by this run "
               f"(cycle {mine})")


def options_scope(run: RunDescription) -> OptionsScope:
    """The run's own PETSc options for the command's duration: ``[solver]`` entries and the inversion's
    TAO type and iteration limit, each giving way to the same option on the command line."""
    defaults = dict(run.solver)
    defaults.update({"inv_tao_max_it": run.inversion.max_it, "inv_tao_type": run.inversion.tao_type})
    return OptionsScope("", defaults)


def _prepare_output(out: str):
    """The output folder exists; temporary files of writes an earlier, killed run left are removed."""
    if PETSc.COMM_WORLD.getRank() == 0:
        os.makedirs(out, exist_ok=True)
        remove_stale_temporaries(out)
    PETSc.COMM_WORLD.tompi4py().Barrier()


def _save_config(run: RunDescription, out: str):
    """``resolved_config.json`` and ``run_info.json`` beside the results they describe (written with them,
    so that a rejected run leaves the folder as it was)."""
    if PETSc.COMM_WORLD.getRank() == 0:
        write_text_atomic(os.path.join(out, "resolved_config.json"), run.to_json())
    write_run_info(out)


def _experiment(run: RunDescription, name: str, args) -> int:
    cycle, exp = registry.experiments()[name]
    out = run.output.dir
    _prepare_output(out)
    if getattr(args, "gather", False):
        result = cycle.hook(exp.gather)(run, out)
        if result is None:
            return 0
        cycle.hook(exp.report)(result, out, args.json)
        _save_config(run, out)
        return 0
    with options_scope(run):
        result = cycle.hook(exp.entry)(run, out, resume=args.resume)
    cycle.hook(exp.report)(result, out, args.json)
    _save_config(run, out)
    return 0


def run(args):
    """Main job: circulation check (ideal age), then the cycle's main experiment."""
    from ..diagnostics.age import age_summary, ideal_age
    from ..grid.distributed import DistributedGrid
    from ..operators.transport import distributed_conservation_defects
    from ..operators.world import load_world
    rd = description(args)
    comm = PETSc.COMM_WORLD
    w = rd.world
    world = load_world(w.source, w.path or None, inputs=w.inputs)
    grid = world.grid
    rprint(f"world: {world.source}; {grid.summary()}; {comm.getSize()} rank(s)")
    dgrid = DistributedGrid(grid, comm)
    Tp = dgrid.matrix_from_scipy(world.transport_rows(dgrid.local_natural))
    d = distributed_conservation_defects(Tp, dgrid)
    rprint(f"transport conservation: row-sum {d['row_sum_rel']:.2e}, 1^T V T {d['volume_column_sum_rel']:.2e}")
    with options_scope(rd):
        age = ideal_age(dgrid, Tp)
    Tp.destroy()
    rprint("ideal age (years): " + ", ".join(f"{k} {v:.0f}" for k, v in age_summary(grid, age).items()))
    _prepare_output(rd.output.dir)
    if comm.getRank() == 0:
        write_gridded(os.path.join(rd.output.dir, "ideal_age.h5"), grid,
                      {"ideal_age": (age, "yr", "ideal age (time since last contact with the surface)")},
                      attrs={"title": "bcp-hpc ideal age of the circulation", "world": world.source})
    del world, dgrid
    main = rd.cycle.main_experiment
    status = _experiment(rd, main, args) if main else _invert(rd, args)
    if status == 0 and comm.getRank() == 0:
        # the main job ends with what a user opens first
        from ..reports.html import write_report
        rprint(f"report: {write_report(rd.output.dir)}")
    return status


def experiment(args):
    """``bcp-hpc experiment NAME``: the experiment of the cycle that declares it."""
    cycle, _ = registry.experiments()[args.experiment]
    return _experiment(description(args, cycle=cycle.name), args.experiment, args)


def invert(args):
    return _invert(description(args), args)


def _invert(rd: RunDescription, args) -> int:
    from ..experiments.invert import invert as run_invert
    from ..reports.inversion import report_inversion
    out = rd.output.dir
    _prepare_output(out)
    with options_scope(rd):
        rec = run_invert(rd, out, resume=args.resume)
    report_inversion(rec, out, args.json)
    _save_config(rd, out)
    return 0
