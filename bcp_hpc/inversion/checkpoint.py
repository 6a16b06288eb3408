"""Checkpoints of accepted iterates, written atomically to HDF5 (rank 0).

Each accepted iterate stores: transformed parameters ``x``, physical values, objective,
gradient, Hessian, trust radius (when known), iteration number, and the state vectors in
natural grid order (so a resume may use any number of ranks).
"""
from __future__ import annotations

import os

import h5py
import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.netcdf_h5 import DimensionedWriter


def write_checkpoint(path: str, it: int, x, values: dict, f: float, g, H, state=None, tracer_names=(),
                     history=(), meta: dict | None = None):
    with atomic_path(path, ".h5") as tmp:
        with h5py.File(tmp, "w") as h:
            # named dimensions throughout: xarray opens the file and its "state" group (engine="h5netcdf")
            w = DimensionedWriter(h)
            h.attrs["iteration"] = int(it)
            h.attrs["objective"] = float(f)
            w.dimension("parameter", np.asarray(list(values), dtype=object))
            w.dimension("parameter_j", np.asarray(list(values), dtype=object))
            w.variable("x", np.asarray(x, float), ("parameter",), "1", long_name="transformed parameters")
            w.variable("gradient", np.asarray(g, float), ("parameter",), "1")
            w.variable("hessian", np.asarray(H, float), ("parameter", "parameter_j"), "1")
            pv = h.create_group("parameters")
            for k, v in values.items():
                pv.attrs[k] = float(v)
            if state is not None:
                s = h.create_group("state")
                sw = DimensionedWriter(s)
                sw.bare_dimension("box", len(state[0]) if len(state) else 0)
                for name, arr in zip(tracer_names, state):
                    sw.variable(name, arr, ("box",), "mmol m-3", long_name=f"{name}, wet boxes in natural order")
            if len(history):
                w.bare_dimension("accepted", len(history))
                w.variable("history_objective", np.asarray([r["objective"] for r in history]), ("accepted",), "1")
                w.variable("history_x", np.asarray([r["x"] for r in history]), ("accepted", "parameter"), "1")
            for k, v in (meta or {}).items():
                h.attrs[k] = v


def read_checkpoint(path: str, n_params: int | None = None, with_state: bool = True) -> dict:
    """The checkpoint's contents; ``with_state=False`` leaves out the state (``{}``), which is
    O(boxes x tracers) and needed on one rank only."""
    if not os.path.exists(path):
        raise InputError("checkpoint not found", path=path)
    try:
        with h5py.File(path, "r") as h:
            out = {"iteration": int(h.attrs["iteration"]), "objective": float(h.attrs["objective"]),
                   "x": h["x"][()], "gradient": h["gradient"][()], "hessian": h["hessian"][()],
                   "parameters": {k: float(v) for k, v in h["parameters"].attrs.items()},
                   "state": {k: h["state"][k][()] for k in h["state"]} if with_state and "state" in h else {}}
            if "trust_radius" in h.attrs:
                out["trust_radius"] = float(h.attrs["trust_radius"])
            if "problem" in h.attrs:
                out["problem"] = str(h.attrs["problem"])
            if "history_x" in h:
                out["history"] = [{"objective": float(f), "x": list(x)} for f, x in
                                  zip(h["history_objective"][()], h["history_x"][()])]
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"corrupt or unreadable checkpoint ({type(exc).__name__}: {exc})", path=path) from exc
    if n_params is not None and out["x"].shape != (n_params,):
        raise InputError(f"checkpoint has {out['x'].shape} parameters, the run optimises {n_params}", path=path,
                         variable="x")
    if not np.all(np.isfinite(out["x"])):
        raise InputError("checkpoint parameters are not finite", path=path, variable="x")
    return out
