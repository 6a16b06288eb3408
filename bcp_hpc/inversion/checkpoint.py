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


def write_checkpoint(path: str, it: int, x, values: dict, f: float, g, H, state=None, tracer_names=(),
                     history=(), meta: dict | None = None):
    with atomic_path(path, ".h5") as tmp:
        with h5py.File(tmp, "w") as h:
            h.attrs["iteration"] = int(it)
            h.attrs["objective"] = float(f)
            h.create_dataset("x", data=np.asarray(x, float))
            h.create_dataset("gradient", data=np.asarray(g, float))
            h.create_dataset("hessian", data=np.asarray(H, float))
            pv = h.create_group("parameters")
            for k, v in values.items():
                pv.attrs[k] = float(v)
            if state is not None:
                s = h.create_group("state")
                for name, arr in zip(tracer_names, state):
                    d = s.create_dataset(name, data=arr, compression="gzip")
                    d.attrs["units"] = "mmol m-3"
            if len(history):
                h.create_dataset("history_objective", data=np.asarray([r["objective"] for r in history]))
                h.create_dataset("history_x", data=np.asarray([r["x"] for r in history]))
            for k, v in (meta or {}).items():
                h.attrs[k] = v


def read_checkpoint(path: str, n_params: int | None = None) -> dict:
    if not os.path.exists(path):
        raise InputError("checkpoint not found", path=path)
    try:
        with h5py.File(path, "r") as h:
            out = {"iteration": int(h.attrs["iteration"]), "objective": float(h.attrs["objective"]),
                   "x": h["x"][()], "gradient": h["gradient"][()], "hessian": h["hessian"][()],
                   "parameters": {k: float(v) for k, v in h["parameters"].attrs.items()},
                   "state": {k: h["state"][k][()] for k in h["state"]} if "state" in h else {}}
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
