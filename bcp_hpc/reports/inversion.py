"""What one inversion leaves behind, for every cycle: the result payload (JSON), the gridded state
with its observations and maps (NetCDF-4), and the printed summary."""
from __future__ import annotations


from ..experiments.outputs import save_inversion
from ..log import rprint


def summary_lines(payload: dict, cycle) -> list:
    """The printed summary: convergence, parameters +- 1 sigma (truth and deviation in twins), the best-
    and worst-constrained combinations, then the cycle's own lines."""
    word = "converged" if payload["converged"] else "stopped (not converged)"
    lines = [f"{word} after {payload['iterations']} iterations (TAO reason {payload['tao_reason_name']}), "
             f"objective {payload['objective']:.6e}"]
    step = payload.get("remaining_step_sigma")
    if step is not None:
        lines.append(f"  the optimum the final Hessian predicts is {step:.2g} posterior sigma away (Newton step "
                     "in the posterior's metric, over the directions the data constrain)")
    flat = payload.get("flat_decrease")
    if flat is not None:
        lines.append(f"  along the directions the data do not constrain the objective promises {flat:.2g} "
                     "log-likelihood units more")
    truth = payload.get("truth", {})
    z = payload.get("z_from_truth", {})
    for n, v in payload["parameters"].items():
        flags = "  (at a bound)" if v.get("at_bound") else ""
        if v["sigma"] is None:
            line = f"  {n:8s} {v['value']:.5g} {v['units']}  unconstrained by the data"
            if v.get("nonpositive_curvature"):
                line += " (the objective is flat or curves down along it here)"
        else:
            line = (f"  {n:8s} {v['value']:.5g} +- {v['sigma']:.3g} {v['units']}  "
                    f"[{v['lower_1sigma']:.4g}, {v['upper_1sigma']:.4g}]")
        if n in truth:
            line += f"  truth {truth[n]:.5g}" + (f" ({z[n]:+.2f} sigma)" if z.get(n) is not None else "")
        lines.append(line + flags)
    cred = payload.get("truth_credibility")
    if cred and cred.get("parameters"):
        level = f"{100 * cred['level']:.0f} %"
        laplace = (f"the Laplace ellipsoid's d^2 = {cred['mahalanobis_squared']:.2f} "
                   f"({'inside' if cred['within'] else 'outside'}, p = {cred['p_value']:.3f})")
        if cred.get("likelihood_ratio") is not None:
            where = "inside" if cred["within_likelihood_region"] else "outside"
            lines.append(f"  the truth lies {where} the {level} likelihood region of the {cred['parameters']} "
                         f"constrained parameters: 2 (f(truth) - f) / s2 = {cred['likelihood_ratio']:.2f} (bound "
                         f"{cred['quantile']:.2f}, p = {cred['likelihood_ratio_p_value']:.3f}); {laplace}")
        else:
            lines.append(f"  the truth and the {level} region of the {cred['parameters']} constrained parameters: "
                         f"{laplace}, bound {cred['quantile']:.2f}")
    lines.append(f"  best-constrained combination: {payload['eigen']['best_constrained']}")
    lines.append(f"  worst-constrained combination: {payload['eigen']['worst_constrained']}")
    if cycle.summary:
        lines += cycle.hook(cycle.summary)(payload)
    return lines


def report_inversion(rec, out_dir: str, json_path: str | None = None):
    """Write the files of one inversion and print its summary."""
    save_inversion(rec, out_dir, json_path=json_path)
    for line in summary_lines(rec.payload, rec.cycle):
        rprint(line)
    rprint(f"results: {out_dir}/{rec.cycle.result_file}, {rec.cycle.state_file}")
