"""One inversion of the configured cycle (``bcp-hpc invert``): set-up, inversion, and its record."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..log import rprint
from .runner import Setup, run_inversion


@dataclass
class InversionRecord:
    """What one inversion produced, for the writers of :mod:`bcp_hpc.reports.inversion`."""
    cycle: object            #: the :class:`~bcp_hpc.cycles.Cycle`
    payload: dict            #: JSON-able: configuration, convergence, posterior, scalar diagnostics
    grid: object
    tracers: list            #: the model's :class:`~bcp_hpc.models.base.Tracer` list
    state: np.ndarray        #: (nt, n) natural order
    observations: dict       #: tracer -> natural-order values (NaN unobserved)
    maps: dict               #: name -> (nlat, nlon) diagnostic maps


def record(setup, out: dict, model=None, product: str | None = None) -> InversionRecord:
    """The record of :func:`~.runner.run_inversion`'s result ``out`` for ``setup``."""
    res, post, diag = out["result"], out["posterior"], out["diagnostics"]
    model = model or setup.model
    payload = {
        "cycle": setup.cycle.name, "model": model.name, "description": model.description,
        "variant": setup.variant(model), "world": setup.world.source,
        "synthetic_forcing": setup.world.info.get("synthetic_forcing", []),
        "npp_product": product or setup.product, "observations": setup.observations_info,
        "iterations": int(res["iterations"]), "objective": float(res["objective"]),
        "converged": bool(res["converged"]), "tao_reason": int(res["reason"]), "tao_reason_name": res["reason_name"],
        # how far the optimum the final Hessian predicts lies, in posterior standard deviations
        "remaining_step_sigma": res.get("remaining_step_sigma"), "flat_decrease": res.get("flat_decrease"),
        "parameters": post["parameters"], "eigen": post["eigen"],
        # of the transformed parameters (log or linear, per the parameter's ``transform``)
        "posterior": {k: post[k] for k in ("names", "noise_variance", "covariance_x", "correlation")},
        "diagnostics": {k: v for k, v in diag.items() if not isinstance(v, np.ndarray)},
        "config": setup.run.to_dict(),
        "iterations_log": out.get("iterations_log"),
    }
    if setup.truth is not None:
        payload["truth"] = {n: setup.truth[n] for n in model.parameters.optimized}
        payload["z_from_truth"] = out["z"]
        payload["truth_credibility"] = out.get("truth_credibility")
    maps = {k: v for k, v in diag.items() if isinstance(v, np.ndarray) and v.shape == setup.grid.shape[:2]}
    return InversionRecord(setup.cycle, payload, setup.grid, list(model.tracers), out["state"],
                           dict(setup.observations), maps)


def invert(run, out_dir: str, resume: bool = False) -> InversionRecord:
    setup = Setup(run, out_dir=out_dir, resume=resume)
    try:
        m = setup.model
        rprint(f"{setup.cycle.name} inversion: {m.description}; variant {m.variant}; world {setup.world.source}, "
               f"NPP {setup.product}; observations: {setup.observations_info.get('kind')} "
               f"({', '.join(setup.observations)})")
        forcing = setup.world.info.get("forcing")
        if forcing:
            rprint("forcing: " + "; ".join(f"{k} from {v}" for k, v in forcing.items()))
        synthetic = setup.world.info.get("synthetic_forcing", [])
        if synthetic:
            rprint(f"synthetic stand-ins (the world has no such field): {', '.join(synthetic)}")
        return record(setup, run_inversion(setup, out_dir, "invert", resume=resume))
    finally:
        setup.destroy()
