"""The phosphorus cycle (``[model] cycle = "P"``): DIP, POP, DOP_s, DOP_l of Wu et al. (2025) §2.

Files: :mod:`.processes` (uptake, decay, restoring), :mod:`.model` (parameters and declaration),
:mod:`.run` (model, twin truth and observations of a run), :mod:`.config` (its configuration keys),
:mod:`.diagnostics`, :mod:`.experiments` (the sigma2 sweep), :mod:`.report` (tables and printout).
"""
from ..registry import Cycle, Experiment
from . import config, run

CYCLE = Cycle(
    name="P", title="4-tracer phosphorus model (DIP, POP, DOP_s, DOP_l; 4 optimised parameters)",
    tracers=("DIP", "POP", "DOPs", "DOPl"), hooks=run, config=config, summary="report:summary",
    experiments=(Experiment("sigma2-sweep", "sigma2 = 0..0.5 inversions + sensitivity runs (spec §2.6)",
                            "experiments:sigma2_sweep", "report:sweep_outputs", default_out="out/sigma2-sweep",
                            slurm_array=("experiment", "sigma2_values", "--sigma2", "s2_"),
                            slurm_task_flags=("--no-sensitivity-runs",), gather="experiments:gather",
                            flags=("--sigma2", "--no-sensitivity-runs")),),
    main_experiment="sigma2-sweep",
)
