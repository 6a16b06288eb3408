"""``bcp-hpc bench joint``: one evaluation of the joint P-C-O objective with gradient and Hessian.

Phases: the reference steady state (cold Newton at the default parameters, block-triangular),
then, from that state as the common warm start, the objective at perturbed parameters: Newton
steady state, 21 first-order sensitivities, the adjoint Hessian.  With ``--baseline`` the same
evaluation runs again in the same process with one monolithic MUMPS LU of the 11-tracer
Jacobian (``-benchj_blocktri 0``), and ``speedup_vs_baseline`` is baseline over package time for
the evaluation; gradients and Hessians must agree.  With ``--compare-newton`` the cold state and the
evaluation run again with Newton on the whole system (``-newton global``, every block refactored
at every iteration) instead of Newton by components (:mod:`bcp_hpc.solvers.components`), and
``newton_by_components_speedup`` gives the ratios.
"""
from __future__ import annotations

import numpy as np

from ..grid.distributed import DistributedGrid
from ..inversion.objective import Objective, Observation
from ..log import rprint
from ..cycles.pco.model import joint_model
from ..experiments.twin import synthetic_observations
from ..models.system import ModelSystem
from ..operators.world import load_world
from ..solvers.steady import SteadyState
from ..solvers.options import OptionsScope
from .common import PETSc, PhaseTimer, write_json

#: the evaluation's parameters: the reference's minus this in every transformed (log) parameter
PERTURBATION = 0.02


def run(args):
    comm = PETSc.COMM_WORLD
    timer = PhaseTimer(comm)
    world = load_world(args.world or "embedded")
    model = joint_model(world, world.npp(), 2.1)
    system = ModelSystem(model, DistributedGrid(world.grid, comm), world)
    unknowns = system.nt * world.grid.nwet
    rprint(f"bench joint: {world.source}, {system.nt} tracers x {world.grid.nwet} boxes = {unknowns} unknowns, "
           f"{system.npar} parameters, {comm.getSize()} ranks")
    with timer.phase("reference state (cold Newton)"):
        ref, cold_factorizations = reference_state(system, "benchref_")
    cold_iterations = ref.newton_iterations
    cold_components = dict(ref.component_iterations)
    X = system.to_natural(ref.u)
    obs = observations_of(X, model, world)
    x_ref = model.parameters.get_x()
    x = x_ref - PERTURBATION
    results = {}
    runs = ([("package", "1", "components")] + ([("global Newton", "1", "global")] if args.compare_newton else [])
            + ([("baseline", "0", "global")] if args.baseline else []))
    global_cold = {}
    for label, blocktri, newton in runs:
        if label == "global Newton":
            # after the package's phases, so that their peak memory does not include this one's
            with OptionsScope("benchrefg_", overrides={"newton": "global"}), timer.phase("global Newton: cold state"):
                model.parameters.set_x(x_ref)        # the reference state's parameters
                glob = SteadyState(system, prefix="benchrefg_")
                glob.solve()
                global_cold = {"iterations": glob.newton_iterations, "state": system.to_natural(glob.u)}
                glob.destroy()
        # Debian's MUMPS 5.5 PORD ordering segfaults on the 11-tracer graph at the embedded world's size (as
        # on the P model's Schur complement at OCIM2 size): the baseline orders with AMF (MUMPS' own
        # ordering also on one process, no METIS from this package)
        scope = OptionsScope("benchj_", defaults={"mat_mumps_icntl_7": "2", "ordering": "solver"} if blocktri == "0"
                             else None, overrides={"blocktri": blocktri, "newton": newton})
        system.forget_evaluations()     # no evaluations carried over from the other run
        with scope:
            obj = Objective(system, obs, prefix="benchj_")
            obj.set_warm_start(ref.u.copy())     # the common warm start
            with timer.phase(f"{label}: objective + gradient + Hessian"):
                f, g, H = obj.evaluate(x, 2)
            results[label] = {"f": f, "g": g, "H": H, "newton": obj.steady.newton_iterations,
                              "components": dict(obj.steady.component_iterations),
                              "factorizations": component_stats(obj.steady),
                              "timings": dict(obj.steady.timings), "solver": obj.steady.solver.describe(),
                              "path": obj.steady.path}
            obj.destroy()
    timer.report("bench joint")
    pkg_key = "package: objective + gradient + Hessian"
    payload = {"benchmark": "joint", "source": world.source, "ranks": comm.getSize(), "unknowns": unknowns,
               "tracers": system.nt, "parameters": system.npar, "cold_newton_iterations": cold_iterations,
               "newton_iterations": results["package"]["newton"], "solver": results["package"]["solver"],
               # "ooc" when the blocks factor out of core (-benchj_solver ooc), else the in-core path
               "solver_path": results["package"]["path"],
               "cold_component_iterations": cold_components,
               "component_iterations": results["package"]["components"],
               "component_factorizations": results["package"]["factorizations"],
               "cold_component_factorizations": cold_factorizations,
               "evaluation_seconds_by_step": results["package"]["timings"],
               "peak_rss_bytes_all_ranks_per_phase": dict(timer.peak_rss_total),
               "seconds": dict(timer.seconds), "peak_rss_bytes": max(timer.peak_rss.values()),
               "peak_rss_bytes_per_phase": dict(timer.peak_rss), "objective": results["package"]["f"]}
    if args.baseline:
        base_key = "baseline: objective + gradient + Hessian"
        t_pkg, t_base = timer.seconds[pkg_key], timer.seconds[base_key]
        g0, g1 = results["package"]["g"], results["baseline"]["g"]
        H0, H1 = results["package"]["H"], results["baseline"]["H"]
        payload.update({"baseline": "monolithic MUMPS LU of the 11-tracer Jacobian (AMF ordering)",
                        "baseline_seconds": t_base,
                        "baseline_peak_rss_bytes": timer.peak_rss[base_key],
                        "speedup_vs_baseline": t_base / t_pkg,
                        "max_rel_diff_gradient": float(np.abs(g0 - g1).max() / np.abs(g1).max()),
                        "max_rel_diff_hessian": float(np.abs(H0 - H1).max() / np.abs(H1).max())})
        rprint(f"speedup_vs_baseline {t_base / t_pkg:.2f} (package {t_pkg:.1f} s, baseline {t_base:.1f} s); "
               f"gradient differs by {payload['max_rel_diff_gradient']:.1e}, Hessian by "
               f"{payload['max_rel_diff_hessian']:.1e} (relative)")
    if args.compare_newton:
        key = "global Newton: objective + gradient + Hessian"
        g0, g1 = results["package"]["g"], results["global Newton"]["g"]
        H0, H1 = results["package"]["H"], results["global Newton"]["H"]
        payload["global_newton"] = {
            "cold_seconds": timer.seconds["global Newton: cold state"],
            "cold_newton_iterations": global_cold["iterations"],
            "evaluation_seconds": timer.seconds[key], "evaluation_newton_iterations": results["global Newton"]["newton"],
            "max_rel_diff_cold_state": float(np.abs(X - global_cold["state"]).max() / np.abs(global_cold["state"]).max()),
            "max_rel_diff_gradient": float(np.abs(g0 - g1).max() / np.abs(g1).max()),
            "max_rel_diff_hessian": float(np.abs(H0 - H1).max() / np.abs(H1).max())}
        payload["newton_by_components_speedup"] = {
            "cold": timer.seconds["global Newton: cold state"] / timer.seconds["reference state (cold Newton)"],
            "evaluation": timer.seconds[key] / timer.seconds[pkg_key]}
        rprint("Newton by components: cold state {cold:.2f}x, evaluation {evaluation:.2f}x faster than Newton on the "
               "whole system".format(**payload["newton_by_components_speedup"]))
    ref.destroy()
    system.destroy()
    write_json(args.json, payload)
    return 0


def reference_state(system, prefix: str):
    """The steady state at the default parameters by cold Newton, and its factorizations per
    component; its factors are released, as it is only the common warm start (an inversion holds
    one factorization at a time)."""
    ref = SteadyState(system, prefix=prefix)
    ref.solve()
    stats = component_stats(ref)
    ref.release_factorization()
    return ref, stats


def observations_of(X, model, world) -> list:
    """Synthetic DIP, DIC, ALK and O₂ observations of the natural-order state ``X`` (2 % of each
    field's spread as noise, half the boxes observed)."""
    names = model.tracer_names
    V = world.grid.box_volume
    return [Observation(nm, synthetic_observations(X[names.index(nm)], V, 0.02 * X[names.index(nm)].std(), 0.5, k)[0])
            for k, nm in enumerate(("DIP", "DIC", "ALK", "O2"))]


def component_stats(steady):
    """Per-component factorizations of a steady state's block-triangular solver (None on other paths)."""
    stats = getattr(steady.solver, "component_stats", None)
    return stats() if stats is not None else None
