"""The files of one inversion, for every cycle: the result payload (JSON) and the gridded state with
its observations and maps (CF-style NetCDF-4).  Experiments of several inversions write one pair per
run, named with the run's tag (``state_s2_0.10.h5``, ``joint_result_cbpm.json``)."""
from __future__ import annotations

import os

from ..io.results import write_gridded, write_json
from ..log import mpi_rank


def tagged(name: str, tag: str = "") -> str:
    """``state.h5`` -> ``state_<tag>.h5`` (unchanged without a tag)."""
    if not tag:
        return name
    stem, ext = os.path.splitext(name)
    return f"{stem}_{tag}{ext}"


def save_inversion(rec, out_dir: str, tag: str = "", json_path: str | None = None):
    """``<result_file>`` and ``<state_file>`` of the cycle (tagged) in ``out_dir``; rank 0 writes, atomically."""
    if mpi_rank() != 0:
        return
    payload = rec.payload
    write_json(os.path.join(out_dir, tagged(rec.cycle.result_file, tag)), payload)
    if json_path:
        write_json(json_path, payload)
    fields = {t.name: (rec.state[a], t.units, t.description or t.name) for a, t in enumerate(rec.tracers)}
    units = {t.name: t.units for t in rec.tracers}
    for name, values in rec.observations.items():
        fields[f"{name}_observed"] = (values, units.get(name, ""), f"observed {name} used in the misfit")
    maps = {k: (v, "mg C m-2 d-1" if k.endswith("_mg_c_m2_d") else "", k.replace("_", " "))
            for k, v in rec.maps.items()}
    write_gridded(os.path.join(out_dir, tagged(rec.cycle.state_file, tag)), rec.grid, fields, maps,
                  attrs={"title": f"bcp-hpc {rec.cycle.name} inversion" + (f" {tag}" if tag else ""),
                         "model": payload["description"], "variant": payload["variant"], "world": payload["world"],
                         "npp_product": payload["npp_product"] or "", "objective": payload["objective"],
                         "converged": int(payload["converged"])})
