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
    truth = payload.get("truth", {})
    z = payload.get("z_from_truth", {})
    for n, v in payload["parameters"].items():
        flags = "  (at a bound)" if v.get("at_bound") else ""
        if v["sigma"] is None:
            line = f"  {n:8s} {v['value']:.5g} {v['units']}  unconstrained by the data"
        else:
            line = (f"  {n:8s} {v['value']:.5g} +- {v['sigma']:.3g} {v['units']}  "
                    f"[{v['lower_1sigma']:.4g}, {v['upper_1sigma']:.4g}]")
        if n in truth:
            line += f"  truth {truth[n]:.5g}" + (f" ({z[n]:+.2f} sigma)" if z.get(n) is not None else "")
        lines.append(line + flags)
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
