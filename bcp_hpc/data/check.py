"""``bcp-hpc data check``: validate a data directory or input file against a grid.

For every field: readable, shape equal to the grid, units known and of the right kind,
wet-mask agreement (a complete climatology must be finite at every wet box; values on
land are counted), physical range (e.g. PO4 0-4 mmol m^-3, O2 0-450).  Status per row:

* ``ok``;
* ``warn``: a few values outside the physical range (<= 1 % of the wet boxes, e.g. the
  interpolation artefacts documented for WOA13 temperature), values on land boxes, or
  NaN at wet boxes of a climatology the model does not need everywhere;
* ``error``: unreadable, wrong shape, wrong units, more than 1 % out of range, NaN at wet
  boxes of a field the model needs everywhere (phosphate, temperature, salinity);
* ``missing``: a known field that is absent (not an error).

The check fails (non-zero exit) when any row is an error.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .catalog import CATALOG, Ocim2Directory
from .climatology import FIELDS
from .inputs import InputsFile
from .units import canonical_units

RANGES = {
    "po4": (0.0, 4.0), "o2": (0.0, 450.0), "si": (0.0, 250.0), "no3": (0.0, 60.0), "dic": (1700.0, 2600.0),
    "alk": (1800.0, 2800.0), "temperature": (-2.5, 35.0), "salinity": (0.0, 42.0), "dop": (0.0, 1.0),
    "doc": (30.0, 200.0), "poc_flux_traps": (0.0, 2000.0), "npp": (0.0, 20000.0), "epc100": (0.0, 2000.0),
}
NEEDED = {"po4", "temperature", "salinity", "npp"}
TOLERATED_FRACTION = 0.01


def _base(name):
    for suffix in ("_woa18", "_obs"):
        name = name.removesuffix(suffix)
    if name.startswith("npp_"):
        return "npp"
    if name.startswith("epc100_"):
        return "epc100"
    return name


def _judge(name, values_wet, full, n_land_values, where):
    base = _base(name)
    status, notes = "ok", []
    n = values_wet.size
    finite = np.isfinite(values_wet)
    if full and not finite.all():
        nbad = int((~finite).sum())
        if base in NEEDED:
            status = "error"
            notes.append(f"{nbad} wet boxes without a value (the model needs every box)")
        else:
            status = "warn"
            notes.append(f"{nbad} wet boxes without a value")
    elif not full:
        notes.append(f"{int(finite.sum())} of {n} wet boxes observed")
    lo, hi = RANGES.get(base, (-np.inf, np.inf))
    v = values_wet[finite]
    out = int(((v < lo) | (v > hi)).sum())
    if out:
        frac = out / max(v.size, 1)
        rng = f"{v.min():.4g}..{v.max():.4g}"
        if frac > TOLERATED_FRACTION:
            status = "error"
            notes.append(f"{out} values ({100 * frac:.2f} %) outside {lo:g}..{hi:g} (range {rng})")
        else:
            status = "warn" if status == "ok" else status
            notes.append(f"{out} values ({100 * frac:.3f} %) outside {lo:g}..{hi:g} (range {rng})")
    if n_land_values:
        status = "warn" if status == "ok" else status
        notes.append(f"{n_land_values} values on land boxes (ignored)")
    if v.size:
        notes.insert(0, f"mean {v.mean():.4g}")
    return {"name": name, "where": where, "status": status, "detail": "; ".join(notes)}


def check_directory(d: Ocim2Directory, grid):
    rows = []
    for name, e in CATALOG.items():
        where = f"{e.file}:{e.variable}"
        try:
            raw = d.raw(name)
        except InputError as exc:
            msg = str(exc)
            rows.append({"name": name, "where": where, "status": "missing" if "file not found" in msg else "error",
                         "detail": msg})
            continue
        if raw.shape != grid.shape:
            rows.append({"name": name, "where": where, "status": "error",
                         "detail": f"shape {raw.shape} differs from the grid {grid.shape}"})
            continue
        vals = d.to_model_units(name, raw, grid)
        land = int(np.isfinite(raw[~grid.mask]).sum())
        rows.append(_judge(name, vals, e.full, land, where))
    return rows


def check_inputs(f: InputsFile, grid):
    rows = []
    try:
        f.check_grid(grid)
    except InputError as exc:
        return [{"name": "grid", "where": f.path, "status": "error", "detail": str(exc)}]
    rows.append({"name": "grid", "where": f.path, "status": "ok", "detail": f"{grid.name}, {grid.nwet} wet boxes"})
    for name in f.fields():
        where = f"{f.path}:{name}"
        base = _base(name)
        units = f.units(name)
        kind = FIELDS.get(base, ("concentration",))[0]
        want = {"concentration": "mmol m-3", "temperature": "degC", "salinity": "1"}[kind]
        if units != want:
            rows.append({"name": name, "where": where, "status": "error",
                         "detail": f"units '{units}', expected '{want}'"})
            continue
        arr = np.asarray(f.array(name))
        if arr.shape != grid.shape or not np.issubdtype(arr.dtype, np.number):
            rows.append({"name": name, "where": where, "status": "error",
                         "detail": f"expected a {grid.shape} array of numbers, got shape {arr.shape}, type {arr.dtype}"})
            continue
        vals = grid.from3d(arr.astype(float))
        full = bool(f.array(name + "_filled").any()) if (name + "_filled") in f.h else False
        full = full or base in NEEDED
        land = int(np.isfinite(arr[~grid.mask]).sum())
        rows.append(_judge(name, vals, full, land, where))
    surf = grid.mask[:, :, 0]
    for prod in f.npp_products():
        name = f"npp_{prod}"
        units = f.units(name)
        try:
            canonical_units(units, path=f.path, variable=name)
        except InputError as exc:
            rows.append({"name": name, "where": f.path, "status": "error", "detail": str(exc)})
            continue
        arr = np.asarray(f.array(name))
        if arr.shape != surf.shape or not np.issubdtype(arr.dtype, np.number):
            rows.append({"name": name, "where": f.path, "status": "error",
                         "detail": f"expected a ({surf.shape[0]}, {surf.shape[1]}) map of numbers, got shape "
                                   f"{arr.shape}, type {arr.dtype}"})
            continue
        arr = arr.astype(float)
        r = _judge(name, arr[surf], True, int(np.isfinite(arr[~surf]).sum()), f"{f.path}:{name}")
        tot = float(np.nansum(np.where(surf, arr, 0) * grid.area2d) * 365 / 1e18)
        r["detail"] = f"global {tot:.1f} Pg C yr-1; " + r["detail"]
        rows.append(r)
    for name in sorted(k for k in f.h if k.startswith("epc100_")):
        arr = f.array(name)
        rows.append(_judge(name, arr[surf], False, 0, f"{f.path}:{name}"))
    if "trap_flux" in f.h:
        t = f.traps()
        rows.append(_judge("poc_flux_traps", t["flux"][t["in_model"] > 0], False, 0, f"{f.path}:trap_flux"))
    return rows


def format_table(rows) -> str:
    w1 = max([len(r["name"]) for r in rows] + [5])
    w2 = min(max([len(r["where"]) for r in rows] + [5]), 60)
    lines = [f"{'field':<{w1}}  {'status':<7}  {'source':<{w2}}  detail", "-" * (w1 + w2 + 30)]
    for r in rows:
        lines.append(f"{r['name']:<{w1}}  {r['status']:<7}  {r['where'][-w2:]:<{w2}}  {r['detail']}")
    n = {s: sum(r["status"] == s for r in rows) for s in ("ok", "warn", "error", "missing")}
    lines.append(f"{n['ok']} ok, {n['warn']} warnings, {n['error']} errors, {n['missing']} missing")
    return "\n".join(lines)
