"""The joint P-C-O cycle (``[model] cycle = "PCO"``): 11 tracers, 21 parameters, carbonate chemistry, O2.

It extends the phosphorus cycle (its processes in the BGC variant, :mod:`.model`) with the carbon
(:mod:`.carbon`) and oxygen (:mod:`.oxygen`) processes.  Files: :mod:`.fields` (fixed fields),
:mod:`.model`, :mod:`.run` (twin truth, noise and start), :mod:`.config`, :mod:`.diagnostics`,
:mod:`.experiments` (one inversion per NPP product), :mod:`.report`.
"""
from ..registry import Cycle, Experiment
from . import config, run
from .model import TRACERS

CYCLE = Cycle(
    name="PCO", title="joint P-C-O model (11 tracers, 21 optimised parameters, carbonate chemistry, O2)",
    tracers=TRACERS, hooks=run, config=config, summary="report:summary",
    diagnostics_collective=True,            # the adjoint DOC export is a parallel solve
    forcing=("npp", "po4", "temperature", "salinity", "silicate", "piston_velocity", "sea_level_pressure", "pme"),
    experiments=(Experiment("joint-products", "joint P-C-O inversion per NPP product ([joint] npp_products): "
                            "exports as mean +- std, cross experiment", "experiments:joint_products",
                            "report:products_outputs", gather="experiments:gather",
                            default_out="out/joint-products",
                            slurm_array=("joint", "npp_products", "--products", "product_"),
                            flags=("--products",)),),
    main_experiment="joint-products",
    tao_defaults={"stop_sigma": run.JOINT_STOP_SIGMA},
    result_file="joint_result.json",
    state_file="joint_state.h5",
    slurm_aliases={"joint-invert": "invert"},
)
