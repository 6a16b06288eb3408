"""What one inversion leaves behind, for every cycle: the result payload (JSON), the gridded state
with its observations and maps (NetCDF-4), and the printed summary."""
from __future__ import annotations

import os

from ..log import mpi_rank, rprint
from .writers import write_gridded, write_json


def write_inversion(rec, out_dir: str, json_path: str | None = None):
    """``<result_file>`` and ``<state_file>`` of the cycle in ``out_dir`` (rank 0, atomic)."""
    if mpi_rank() != 0:
        return
    payload = rec.payload
    write_json(os.path.join(out_dir, rec.cycle.result_file), payload)
    if json_path:
        write_json(json_path, payload)
    fields = {t.name: (rec.state[a], t.units, t.description or t.name) for a, t in enumerate(rec.tracers)}
    units = {t.name: t.units for t in rec.tracers}
    for name, values in rec.observations.items():
        fields[f"{name}_observed"] = (values, units.get(name, ""), f"observed {name} used in the misfit")
    maps = {k: (v, "mg C m-2 d-1" if k.endswith("_mg_c_m2_d") else "", k.replace("_", " "))
            for k, v in rec.maps.items()}
    write_gridded(os.path.join(out_dir, rec.cycle.state_file), rec.grid, fields, maps,
                  attrs={"title": f"bcp-hpc {rec.cycle.name} inversion", "model": payload["description"],
                         "variant": payload["variant"], "world": payload["world"],
                         "objective": payload["objective"], "converged": int(payload["converged"])})


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
    write_inversion(rec, out_dir, json_path)
    for line in summary_lines(rec.payload, rec.cycle):
        rprint(line)
    rprint(f"results: {out_dir}/{rec.cycle.result_file}, {rec.cycle.state_file}")
