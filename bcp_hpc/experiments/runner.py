"""One experiment runner for every cycle: set-up, observations, inversion, posterior, diagnostics.

:class:`Setup` builds, from a :class:`~.description.RunDescription`, the world, the distributed
grid, the cycle's model and its observations (real ones from the cycle's reader, or a twin
experiment: the model's steady state at the cycle's truth, sampled and perturbed).
:func:`run_inversion` runs one Bayesian inversion with checkpoints and returns the result, the
posterior, the cycle's diagnostics and the state.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from ..grid.distributed import DistributedGrid
from ..inversion.objective import Objective, Observation
from ..inversion.posterior import posterior
from ..inversion.tao_driver import Inversion
from ..models.system import ModelSystem
from ..operators.world import load_world
from ..petsc_env import import_petsc4py
from ..solvers.steady import SteadyState
from .twin import synthetic_observations

PETSc = import_petsc4py()
log = logging.getLogger(__name__)


class Setup:
    """World, distributed grid, the cycle's model and the observations of a run description."""

    def __init__(self, run, comm=None):
        self.run = run
        self.cycle = run.cycle
        self.comm = comm or PETSc.COMM_WORLD
        w = run.world
        self.world = load_world(w.source, w.path or None, inputs=w.inputs)
        self.world.require(self.cycle.forcing)
        self.grid = self.world.grid
        self.dgrid = DistributedGrid(self.grid, self.comm)
        self.product = w.npp_product or next(iter(self.world.npp_products))
        self.real_observations = None
        self.observations_info = {}
        if self.cycle.real_observations is not None:
            self.real_observations, self.observations_info = self.cycle.real_observations(self)
        self.model, self.system = self.model_for(self.product)
        self.truth = None
        self.truth_state = None
        if self.real_observations is None:
            self.observations = self._twin()
        else:
            self.observations = dict(self.real_observations)

    def model_for(self, product: str):
        """The cycle's model forced by NPP product ``product`` and its system (same world and grid)."""
        model = self.cycle.build(self, product)
        model.parameters.update_from(dict(self.run.parameters), "config [parameters]")
        return model, ModelSystem(model, self.dgrid, self.world)

    def _twin(self) -> dict:
        """Observations of the model's state at the cycle's truth (``truth_`` steady state)."""
        ps = self.model.parameters
        saved = ps.values()
        self.truth = self.cycle.truth(self, self.model)
        ps.set(**self.truth)
        try:
            with SteadyState(self.system, prefix="truth_") as ss:
                ss.solve()
                self.truth_state = self.system.to_natural(ss.u)
        finally:
            ps.set(**saved)
        oc = self.run.observations
        V = self.grid.box_volume
        obs, stds = {}, {}
        for k, (name, std) in enumerate(self.cycle.twin_observed(self, self.truth_state)):
            field = self.model.observable(name, self.truth_state)
            obs[name], _ = synthetic_observations(field, V, std, float(oc.coverage), int(oc.seed) + k, oc.noise_model)
            stds[name] = std
        self.observations_info.update({"kind": "synthetic", "truth": {n: self.truth[n] for n in ps.optimized},
                                       "noise_std": stds, "noise_model": oc.noise_model,
                                       "coverage": oc.coverage, "seed": oc.seed})
        return obs

    def x_true(self):
        """Transformed true parameters of a twin experiment (None with real observations)."""
        if self.truth is None:
            return None
        ps = self.model.parameters
        return np.array([ps[n].to_x(self.truth[n]) for n in ps.optimized])

    def variant(self, model=None) -> dict:
        """Every model choice of this run (docs/variants.md): the model's switches and the inversion's."""
        run = self.run
        return {**(model or self.model).variant, "noise_scale": run.inversion.noise_scale,
                "hessian": run.inversion.hessian, "observed": list(self.observations),
                "observations": self.observations_info.get("kind"),
                "noise_model": run.observations.noise_model if self.truth is not None else None}

    def problem(self) -> dict:
        """What this set-up's checkpoints belong to: the run description's defining keys and the grid."""
        return {**self.run.problem(), "grid_wet_boxes": int(self.grid.nwet)}

    def destroy(self):
        self.system.destroy()


def run_inversion(setup: Setup, out_dir: str, tag: str, resume: bool = False, x0=None, model=None,
                  system=None) -> dict:
    """One inversion of ``setup``'s model (or ``model``/``system`` forced by another product) against its
    observations; checkpoint ``checkpoint_<tag>.h5`` and log ``iterations_<tag>.jsonl`` in ``out_dir``.

    Starts from ``x0``, else the cycle's start (e.g. a perturbed truth), else the model's parameters."""
    run = setup.run
    model = model or setup.model
    system = system or setup.system
    info = setup.observations_info
    obs = [Observation(name, values, combination=model.combination(name),
                       source="synthetic" if setup.real_observations is None else
                       info.get("tracers", {}).get(name, {}).get("source", info.get("file", "")))
           for name, values in setup.observations.items()]
    obj = Objective(system, obs, hessian=run.inversion.hessian)
    x_true = setup.x_true()
    if x0 is None and setup.cycle.start is not None:
        x0 = setup.cycle.start(setup, x_true)
    inv = Inversion(obj, checkpoint=os.path.join(out_dir, f"checkpoint_{tag}.h5"),
                    log_jsonl=os.path.join(out_dir, f"iterations_{tag}.jsonl"),
                    tao_defaults=setup.cycle.tao_defaults, problem=setup.problem())
    try:
        res = inv.run(x0=x0, resume=resume)
        post = posterior(model.parameters, res["x"], res["objective"], res["hessian"], obj.n_obs,
                         run.inversion.noise_scale)
        state = obj.state_to_natural()
    finally:
        obj.destroy()
    diag = setup.cycle.hook(setup.cycle.diagnostics)(setup, model, state)
    z = {}
    if x_true is not None:
        for k, name in enumerate(model.parameters.optimized):
            p = post["parameters"][name]
            if p["sigma"] is not None and p["sigma_x"]:
                z[name] = float((res["x"][k] - x_true[k]) / p["sigma_x"])
    return {"result": res, "posterior": post, "diagnostics": diag, "state": state, "x_true": x_true, "z": z,
            "iterations_log": f"iterations_{tag}.jsonl"}
