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

from ..data.observations import read_local_observation
from ..errors import InputError, SolverError
from ..grid.distributed import DistributedGrid
from ..inversion.objective import Objective, Observation
from ..inversion.posterior import noise_variance, posterior, truth_credibility
from ..inversion.tao_driver import Inversion
from ..models.system import ModelSystem
from ..operators.world import load_world
from ..petsc_env import import_petsc4py
from ..solvers.steady import SteadyState
from .twin import synthetic_observations

PETSc = import_petsc4py()
log = logging.getLogger(__name__)


#: a twin experiment's true state, kept in the output folder so that ``--resume`` need not recompute it
TRUTH_FILE = "twin_truth.h5"


class Setup:
    """World, distributed grid, the cycle's model and the observations of a run description.

    ``out_dir``: where a twin experiment keeps its true state (:data:`TRUTH_FILE`); with ``resume`` a
    stored one of the same problem and truth is read instead of solved again."""

    def __init__(self, run, comm=None, out_dir: str | None = None, resume: bool = False):
        self.run = run
        self.out_dir, self.resume = out_dir, resume
        self.cycle = run.cycle
        self.comm = comm or PETSc.COMM_WORLD
        w = run.world
        self.world = load_world(w.source, w.path or None, inputs=w.inputs)
        self.world.require(self.cycle.forcing)
        self.grid = self.world.grid
        self.dgrid = DistributedGrid(self.grid, self.comm)
        self.product = w.npp_product or next(iter(self.world.npp_products))
        #: observed tracer -> natural-order n-vector as the cycle's reader gave it, on rank 0 (None values
        #: elsewhere); None for a twin experiment
        self.real_observations = None
        self.observations_info = {}
        if self.cycle.real_observations is not None:
            self.real_observations, self.observations_info = self._read_real_observations()
        self.model, self.system = self.model_for(self.product)
        self.truth = None
        #: a twin's true state, natural order (nt, n), on rank 0 only (None elsewhere and with real data)
        self.truth_state = None
        #: observed tracer -> natural-order n-vector (NaN unobserved) on rank 0, what the diagnostics and
        #: the result files read; the same names with None elsewhere
        self.observations = {}
        #: observed tracer -> this rank's boxes (local order), what the objective reads
        self.local_observations = {}
        #: observed tracer -> how ranks other than 0 got their boxes ("hyperslab" or "sent by rank 0")
        self.observations_read = {}
        if self.real_observations is None:
            self._twin()
        else:
            self._keep_observations(self.real_observations)
            self.real_observations = self.observations      # the readers' whole arrays are not kept elsewhere

    def _read_real_observations(self):
        """The cycle's reader on rank 0 (it reads whole fields and derives constants from them); every rank
        receives its info, or its error, and the observed tracers' names."""
        mpi = self.comm.tompi4py()
        whole = info = problem = None
        if mpi.rank == 0:
            try:
                whole, info = self.cycle.real_observations(self)
            except InputError as exc:
                problem = exc
        names, info, problem = mpi.bcast((None if whole is None else list(whole), info, problem)
                                         if mpi.rank == 0 else None, root=0)
        if problem is not None:
            raise problem
        if names is None:
            return None, info
        return (whole if mpi.rank == 0 else dict.fromkeys(names)), info

    def _keep_observations(self, whole: dict):
        """:attr:`observations` (whole on rank 0) and :attr:`local_observations` (every rank's own boxes).

        A tracer read from a `bcp-hpc data build` file (``info["tracers"][name]`` of the reader) is read
        again by every other rank, as a hyperslab of its own columns, and filtered with the limits of the
        whole field (:func:`~bcp_hpc.data.observations.read_local_observation`); one from an OCIM2 data
        folder (no partial read) is sent by rank 0.  :attr:`observations_read` says which."""
        mpi = self.comm.tompi4py()
        loc = self.dgrid.local_natural
        per_tracer = self.observations_info.get("tracers", {})
        # rank 0 decides, so that every rank takes the same (collective) way for each tracer
        by_slab = mpi.bcast({name: name in per_tracer and "field" in per_tracer[name]
                             and not os.path.isdir(per_tracer[name]["source"]) for name in whole}
                            if mpi.rank == 0 else None, root=0)
        self.observations = {k: (v if mpi.rank == 0 else None) for k, v in whole.items()}
        self.local_observations, problem = {}, ""
        self.observations_read = {name: "hyperslab" if by_slab[name] else "sent by rank 0" for name in whole}
        for name, values in whole.items():
            spec = per_tracer.get(name)
            if not by_slab[name]:
                self.local_observations[name] = self.dgrid.local_from_root(values)
            elif mpi.rank == 0:
                self.local_observations[name] = np.asarray(values, dtype=float)[loc]
            else:
                try:
                    self.local_observations[name] = read_local_observation(spec, name, self.grid, loc)
                except InputError as exc:   # this rank cannot read the file (changed, not shared): all stop
                    problem = problem or str(exc)
        problems = [p for p in mpi.allgather(problem) if p]
        if problems:
            raise InputError(problems[0])

    def model_for(self, product: str):
        """The cycle's model forced by NPP product ``product`` and its system (same world and grid)."""
        model = self.cycle.build(self, product)
        model.parameters.update_from(dict(self.run.parameters), "config [parameters]")
        return model, ModelSystem(model, self.dgrid, self.world)

    def _twin(self):
        """Observations of the model's state at the cycle's truth (``truth_`` steady state).

        The true state is whole on rank 0 only (:attr:`truth_state` is None elsewhere): rank 0 draws
        the observations and sends each rank its own boxes."""
        ps = self.model.parameters
        saved = ps.values()
        self.truth = self.cycle.truth(self, self.model)
        mpi = self.comm.tompi4py()
        self.truth_state = self._stored_truth_state()
        if not mpi.bcast(self.truth_state is not None, root=0):
            ps.set(**self.truth)
            try:
                with SteadyState(self.system, prefix="truth_") as ss:
                    ss.solve()
                    self.truth_state = self.system.to_natural(ss.u, root=0)
            finally:
                ps.set(**saved)
            self._store_truth_state()
        oc = self.run.observations
        obs, stds = {}, {}
        if mpi.rank == 0:
            V = self.grid.box_volume
            for k, (name, std) in enumerate(self.cycle.twin_observed(self, self.truth_state)):
                field = self.model.observable(name, self.truth_state)
                obs[name], _ = synthetic_observations(field, V, std, float(oc.coverage), int(oc.seed) + k,
                                                      oc.noise_model)
                stds[name] = std
        stds = mpi.bcast(stds, root=0)
        self.observations = {name: obs.get(name) for name in stds}
        self.local_observations = {name: self.dgrid.local_from_root(obs.get(name)) for name in stds}
        self.observations_read = dict.fromkeys(stds, "sent by rank 0")
        self.observations_info.update({"kind": "synthetic", "truth": {n: self.truth[n] for n in ps.optimized},
                                       "noise_std": stds, "noise_model": oc.noise_model,
                                       "coverage": oc.coverage, "seed": oc.seed})

    def _truth_key(self) -> dict:
        """What a stored true state belongs to: the problem, the true parameters and the tracers."""
        import json
        return {"problem": json.dumps(self.problem(), sort_keys=True),
                "truth": json.dumps({n: float(v) for n, v in self.truth.items()}, sort_keys=True),
                "tracers": json.dumps(list(self.model.tracer_names))}

    def _truth_path(self):
        return None if self.out_dir is None else os.path.join(self.out_dir, TRUTH_FILE)

    def _stored_truth_state(self):
        """The true state from :data:`TRUTH_FILE` when resuming and it belongs to this problem, else None
        (read on rank 0 only; None elsewhere)."""
        path = self._truth_path()
        if not (self.resume and path and os.path.exists(path)) or self.comm.getRank() != 0:
            return None
        import h5py
        key = self._truth_key()
        try:
            with h5py.File(path, "r") as f:
                stored = {k: str(f.attrs.get(k, "")) for k in key}
                state = f["state"][...] if stored == key else None
        except (OSError, KeyError) as exc:
            log.info("twin truth: %s unreadable (%s); solving it again", path, exc)
            return None
        if state is None or state.shape != (self.system.nt, self.grid.nwet):
            log.info("twin truth: %s belongs to another problem or truth; solving it again", path)
            return None
        log.info("twin truth: the true state read from %s (not solved again)", path)
        return state

    def _store_truth_state(self):
        """Write the true state to :data:`TRUTH_FILE` (rank 0, atomically) when there is an output folder."""
        path = self._truth_path()
        if path is None or self.comm.getRank() != 0:
            return
        import h5py
        from ..io.atomic import atomic_path
        with atomic_path(path, ".h5") as tmp:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("state", data=np.asarray(self.truth_state))
                for k, v in self._truth_key().items():
                    f.attrs[k] = v
                f.attrs["description"] = ("steady state (mmol m-3, natural wet-box order, one row per tracer) at "
                                          "the twin experiment's true parameters")

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
    obs = [Observation(name, values, combination=model.combination(name), local=True,
                       source="synthetic" if setup.real_observations is None else
                       info.get("tracers", {}).get(name, {}).get("source", info.get("file", "")))
           for name, values in setup.local_observations.items()]
    obj = Objective(system, obs, hessian=run.inversion.hessian)
    x_true = setup.x_true()
    if x0 is None and setup.cycle.start is not None:
        x0 = setup.cycle.start(setup, x_true)
    inv = Inversion(obj, checkpoint=os.path.join(out_dir, f"checkpoint_{tag}.h5"),
                    log_jsonl=os.path.join(out_dir, f"iterations_{tag}.jsonl"),
                    tao_defaults=setup.cycle.tao_defaults, problem=setup.problem(),
                    noise_variance=lambda f: noise_variance(f, obj.n_obs, run.inversion.noise_scale))
    try:
        res = inv.run(x0=x0, resume=resume)
        post = posterior(model.parameters, res["x"], res["objective"], res["hessian"], obj.n_obs,
                         run.inversion.noise_scale)
        state = obj.state_to_natural(root=0)      # whole on the rank that writes it only
        # a twin's objective at the truth, for the likelihood-ratio test (one more steady state, after
        # the optimum's state has been taken); only where the model's fixed parameters are the truth's
        # (not, e.g., the sweep's runs at another sigma2)
        f_true = _objective_at(obj, x_true) if x_true is not None and _fixed_as_truth(model, setup.truth) else None
        if f_true is not None:
            model.parameters.set_x(res["x"])
    finally:
        obj.destroy()
    diag = diagnose(setup, model, state)
    z = {}
    credibility = None
    if x_true is not None:
        constrained = []
        for k, name in enumerate(model.parameters.optimized):
            p = post["parameters"][name]
            if p["sigma"] is not None and p["sigma_x"]:
                z[name] = float((res["x"][k] - x_true[k]) / p["sigma_x"])
                constrained.append(k)
        credibility = truth_credibility(res["x"], x_true, post["covariance_x"], constrained,
                                        f_opt=res["objective"], f_true=f_true, noise_variance=post["noise_variance"])
    return {"result": res, "posterior": post, "diagnostics": diag, "state": state, "x_true": x_true, "z": z,
            "truth_credibility": credibility, "iterations_log": f"iterations_{tag}.jsonl"}


def diagnose(setup, model, state) -> dict:
    """The cycle's diagnostics of ``state`` (the whole state on rank 0, None elsewhere), on every rank.

    Rank 0 computes them (a cycle whose hook has collective steps, ``Cycle.diagnostics_collective``,
    is called on every rank) and its result, totals and maps of O(columns), is sent to every rank:
    no other rank holds a whole field."""
    rank0 = setup.comm.getRank() == 0
    out = None
    if rank0 or setup.cycle.diagnostics_collective:
        out = setup.cycle.hook(setup.cycle.diagnostics)(setup, model, state)
    return setup.comm.tompi4py().bcast(out if rank0 else None, root=0)


def _objective_at(obj, x):
    """The objective at ``x`` (no derivatives), or None when its steady state fails."""
    try:
        return float(obj.evaluate(np.asarray(x, float), order=0)[0])
    except SolverError as exc:
        log.warning("the objective at the twin's truth could not be evaluated (%s)", exc)
        return None


def _fixed_as_truth(model, truth: dict) -> bool:
    """Whether every parameter the inversion does not optimise has the twin truth's value."""
    ps = model.parameters
    return all(np.isclose(ps[n].value, v, rtol=1e-12, atol=0.0) for n, v in truth.items()
               if n in ps and n not in ps.optimized)
