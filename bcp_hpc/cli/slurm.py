"""``bcp-hpc slurm render KIND``: a SLURM batch script for a run, from its config and flags.

Kinds: ``forward`` (``bcp-hpc run``), ``invert`` (one inversion of the configured cycle, or of
``--cycle``), every experiment a registered cycle declares (``sigma2-sweep`` is a job array, one
sigma2 per task; ``joint-products``), the cycles' aliases (``joint-invert``: the 21-parameter joint
inversion), ``bench-scaling`` (the scaling ladder) and ``bench-pmodel``.

Resources come from the config's ``[slurm]`` section, overridden by flags: nodes, ranks per
node, memory per node, wall time, partition, account, ``module load`` lines, the virtual
environment, and the launcher (``srun`` on SLURM; set ``LAUNCH="mpirun -n 2"`` in the
environment to run the same script on a workstation).  Every run script is requeue-safe:
``#SBATCH --requeue`` plus a USR1 signal two minutes before the wall time that requeues the
job, and the command always passes ``--resume`` so the requeued job continues from the last
checkpoint (accepted iterate / finished sweep runs) in its output directory.
"""
from __future__ import annotations

import os
import shlex
import stat

from ..cycles import registry
from ..errors import ConfigError
from ..io.atomic import atomic_path

BENCH_KINDS = ("bench-scaling", "bench-pmodel")


def kinds() -> dict:
    """kind -> (what it runs, cycle or None): "run", "invert", "experiment" or "bench"."""
    out = {"forward": ("run", None), "invert": ("invert", None)}
    for c in registry.all_cycles():
        for e in c.experiments:
            out[e.name] = ("experiment", c)
        for alias, target in c.slurm_aliases.items():
            out[alias] = (target, c)
    for b in BENCH_KINDS:
        out[b] = ("bench", None)
    return out


KINDS = tuple(kinds())


def _header(name, s, array=None):
    lines = ["#!/bin/bash", f"# Rendered by `bcp-hpc slurm render {name}`; edit freely.",
             f"#SBATCH --job-name=bcp-{name}",
             f"#SBATCH --nodes={int(s['nodes'])}",
             f"#SBATCH --ntasks-per-node={int(s['ranks_per_node'])}",
             f"#SBATCH --mem={s['mem']}",
             f"#SBATCH --time={s['time']}",
             f"#SBATCH --output=bcp-{name}-%j.out" if not array else f"#SBATCH --output=bcp-{name}-%A_%a.out"]
    if s.get("partition"):
        lines.append(f"#SBATCH --partition={s['partition']}")
    if s.get("account"):
        lines.append(f"#SBATCH --account={s['account']}")
    if array:
        lines.append(f"#SBATCH --array={array}")
    if name not in BENCH_KINDS:
        lines += ["#SBATCH --requeue", "#SBATCH --signal=B:USR1@120"]
    return lines


def _environment(s, name):
    lines = ["set -euo pipefail"]
    if s.get("modules"):
        lines.append('load_module() { if type module >/dev/null 2>&1; then module load "$1"; '
                     'else echo "bcp: no module command here; not loading $1" >&2; fi; }')
    for m in s.get("modules") or []:
        lines.append(f"load_module {shlex.quote(m)}")
    venv = s.get("venv") or ""
    if venv:
        lines.append(f'source {shlex.quote(os.path.join(venv, "bin", "activate"))}')
    else:
        lines.append('source "${BCP_VENV:-$HOME/bcp-hpc/.venv}/bin/activate"')
    lines += ["export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1",
              f'LAUNCH="${{LAUNCH:-{s["launcher"]}}}"',
              # the tasks of a job array share one output folder (the array's id); each requeues itself
              'JOB="${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-local}}"',
              'TASK_JOB="${SLURM_JOB_ID:-local}"']
    if name not in BENCH_KINDS:
        lines += ["# two minutes before the wall time: requeue; the job resumes from its checkpoints",
                  "on_usr1() { echo \"wall time near: requeueing $TASK_JOB\"; "
                  "[ \"$TASK_JOB\" != local ] && scontrol requeue \"$TASK_JOB\"; exit 0; }",
                  "trap on_usr1 USR1"]
    return lines


def render(kind: str, run, config_path: str | None, out_dir: str, cycle: str | None = None) -> str:
    """The script of job ``kind`` for run description ``run`` (``config_path``: the file it came from,
    passed to the job; ``out_dir``: the run's output directory inside the job)."""
    table = kinds()
    if kind not in table:
        raise ConfigError(f"unknown job kind '{kind}' (known: {', '.join(table)})")
    what, owner = table[kind]
    s = run.slurm
    ranks = int(s.nodes) * int(s.ranks_per_node)
    conf = f" --config {shlex.quote(os.path.abspath(config_path))}" if config_path else ""
    world = run.world.source
    wflag = f" --world {shlex.quote(world)}" if not config_path else ""
    if any(c in out_dir for c in '"`\\'):
        raise ConfigError(f"output directory {out_dir!r} must not contain quotes or backslashes")
    out_q = f'"{out_dir}"'   # double quotes: $JOB / $SLURM_* expand inside the job
    array = None
    body = []
    log_view = f"-log_view :{out_q}/log_view.txt"
    if what == "run":
        body.append(f"$LAUNCH bcp-hpc run{conf}{wflag} --out {out_q} --resume {log_view} &")
    elif what == "invert":
        name = owner.name if owner is not None else (cycle or None)
        cflag = f" --cycle {shlex.quote(name)}" if name else ""
        body.append(f"$LAUNCH bcp-hpc invert{cflag}{conf}{wflag} --out {out_q} --resume {log_view} &")
    elif what == "experiment":
        exp = owner.experiment(kind)
        if exp.slurm_array:
            section, key, flag, folder = exp.slurm_array
            values = list(run[section][key])
            array = f"0-{len(values) - 1}"
            extra = "".join(f" {f}" for f in exp.slurm_task_flags)
            body += [f"VALUES=({' '.join(repr(v) for v in values)})",
                     'V="${VALUES[${SLURM_ARRAY_TASK_ID:-0}]}"',
                     f'$LAUNCH bcp-hpc experiment {kind}{conf}{wflag} {flag} "$V"{extra} '
                     f'--out {out_q}/{folder}"$V" --resume &']
            if exp.gather:
                # after this task: merge every task's run into the experiment's tables (the last task to finish
                # writes them; the others say which runs are still missing)
                gather = f"bcp-hpc experiment {kind}{conf}{wflag} --gather --out {out_q}"
        else:
            body.append(f"$LAUNCH bcp-hpc experiment {kind}{conf}{wflag} --out {out_q} --resume {log_view} &")
    elif kind == "bench-scaling":
        # the driver runs once and launches one job step per rank count with $BCP_LAUNCH -n k
        body.append(f'BCP_LAUNCH="$LAUNCH" bcp-hpc bench scaling --rungs embedded,ocim2,2deg48 '
                    f'--solver direct,structured,ooc,joint --max-ranks {ranks} --csv {out_q}/scaling.csv '
                    f'--json {out_q}/scaling.json')
    else:
        body += ["n=1", f'while [ "$n" -le {ranks} ]; do',
                 f'  $LAUNCH -n "$n" bcp-hpc bench pmodel --json {out_q}/pmodel_"$n"ranks.json', "  n=$((n * 2))",
                 "done"]
    lines = _header(kind, s, array) + _environment(s, kind) + [f"mkdir -p {out_q}"] + body
    if body[-1].endswith("&"):
        lines.append("wait $!   # in the background so the USR1 trap can run")
    if what == "experiment" and exp.slurm_array and exp.gather:
        lines.append(gather)
    return "\n".join(lines) + "\n"


def run(args):
    from ..experiments.description import RunDescription
    if args.list or not args.kind:
        for k, (what, owner) in kinds().items():
            print(f"{k:16s} {what}" + (f" ({owner.name} cycle)" if owner is not None else ""))
        return 0
    over = {"slurm": {}}
    for k in ("nodes", "ranks_per_node", "mem", "time", "partition", "account", "venv", "launcher"):
        v = getattr(args, k)
        if v is not None:
            over["slurm"][k] = os.path.abspath(v) if k == "venv" else v
    if args.module:
        over["slurm"]["modules"] = list(args.module)
    if args.world:
        over["world"] = {"source": args.world}
    if args.cycle:
        over["model"] = {"cycle": args.cycle}
    rd = RunDescription.load(args.config, over)
    cycle = args.cycle or (rd.model.cycle if args.config else None)
    text = render(args.kind, rd, args.config, args.run_out or f"runs/{args.kind}-$JOB", cycle=cycle)
    if args.out in (None, "-"):
        print(text, end="")
        return 0
    with atomic_path(args.out) as tmp:
        with open(tmp, "w") as fh:
            fh.write(text)
        os.chmod(tmp, os.stat(tmp).st_mode | stat.S_IXUSR)
    from ..log import rprint
    rprint(f"wrote {args.out} ({args.kind}, {rd.slurm.nodes} node(s) x {rd.slurm.ranks_per_node} ranks)")
    return 0
