"""Read and write MATLAB files: v5 through :mod:`scipy.io`, v7.3 (HDF5) through :mod:`h5py`.

Only what the OCIM2 layout needs: numeric arrays, structs (nested) and sparse
matrices.  v7.3 arrays are stored transposed by MATLAB (HDF5 is row-major);
:func:`load` undoes that so both versions give the same NumPy arrays.
"""
from __future__ import annotations

import os

import h5py
import numpy as np
import scipy.io
import scipy.sparse as sp

from ..errors import InputError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_v73(path: str) -> bool:
    """True if the file is a MATLAB v7.3 (HDF5) file."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    return HDF5_SIGNATURE in head[:8] or HDF5_SIGNATURE in head[512:520]


class _V73Struct(dict):
    pass


def _h5_to_py(obj, path, name, skip=()):
    if isinstance(obj, h5py.Group):
        cls = obj.attrs.get("MATLAB_class", b"struct")
        cls = cls.decode() if isinstance(cls, bytes) else str(cls)
        if "MATLAB_sparse" in obj.attrs:
            nrows = int(obj.attrs["MATLAB_sparse"])
            jc = obj["jc"][()].astype(np.int64)
            ncols = jc.size - 1
            ir = obj["ir"][()].astype(np.int64) if "ir" in obj else np.zeros(0, np.int64)
            data = obj["data"][()] if "data" in obj else np.zeros(0)
            return sp.csc_matrix((data, ir, jc), shape=(nrows, ncols))
        out = _V73Struct()
        for k in obj.keys():
            if f"{name}.{k}" not in skip:
                out[k] = _h5_to_py(obj[k], path, f"{name}.{k}", skip)
        return out
    data = obj[()]
    if isinstance(data, np.ndarray) and data.ndim >= 2:
        data = data.T  # MATLAB column-major -> NumPy
    return data


def _mat_struct_to_dict(v):
    """Convert scipy.io's mat_struct / structured arrays into dicts recursively."""
    if isinstance(v, scipy.io.matlab.mat_struct):
        return {k: _mat_struct_to_dict(getattr(v, k)) for k in v._fieldnames}
    if isinstance(v, np.ndarray) and v.dtype.names:
        if v.size == 1:
            return {k: _mat_struct_to_dict(v[k].item() if v[k].size == 1 else v[k]) for k in v.dtype.names}
    return v


def load(path: str, variables=None, skip=()) -> dict:
    """Load a MATLAB file (any version) into a dict of arrays / dicts / sparse matrices.

    ``skip``: dotted names (e.g. ``output.TR``) a v7.3 file's reader leaves out (v5 files are read
    whole).  Raises :class:`InputError` naming the file for unreadable or corrupt files.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("file does not exist", path=path)
    try:
        if is_v73(path):
            out = {}
            with h5py.File(path, "r") as f:
                names = [k for k in f.keys() if not k.startswith("#")]
                for k in names:
                    if (variables is None or k in variables) and k not in skip:
                        out[k] = _h5_to_py(f[k], path, k, skip)
            return out
        raw = scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True, variable_names=variables)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means a corrupt/unknown file
        raise InputError(f"cannot read as a MATLAB file ({type(exc).__name__}: {exc})", path=path) from exc
    return {k: _mat_struct_to_dict(v) for k, v in raw.items() if not k.startswith("__")}


def get(d: dict, dotted: str, path: str):
    """Fetch ``a.b.c`` from nested dicts, raising a clear error naming the missing variable."""
    cur = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise InputError("variable not found in file", path=path, variable=dotted)
        cur = cur[part]
    return cur


def has(d: dict, dotted: str) -> bool:
    cur = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def save_v5(path: str, variables: dict):
    """Write a MATLAB v5 file (nested dicts become structs)."""
    scipy.io.savemat(path, variables, do_compression=True, oned_as="column")


def _write_h5(group, name, value):
    if isinstance(value, dict):
        g = group.create_group(name)
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        for k, v in value.items():
            _write_h5(g, k, v)
    elif sp.issparse(value):
        m = sp.csc_matrix(value)
        g = group.create_group(name)
        g.attrs["MATLAB_class"] = np.bytes_("double")
        g.attrs["MATLAB_sparse"] = np.uint64(m.shape[0])
        g.create_dataset("data", data=m.data)
        g.create_dataset("ir", data=m.indices.astype(np.uint64))
        g.create_dataset("jc", data=m.indptr.astype(np.uint64))
    else:
        a = np.asarray(value)
        if a.ndim == 1:
            a = a[:, None]
        ds = group.create_dataset(name, data=a.T)
        ds.attrs["MATLAB_class"] = np.bytes_("double" if a.dtype.kind == "f" else "uint8" if a.dtype == np.uint8 else "double")


def save_v73(path: str, variables: dict):
    """Write a MATLAB v7.3 (HDF5, 512-byte user block) file that MATLAB and :func:`load` can read."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in variables.items():
            _write_h5(f, k, v)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: bcp-hpc HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM" + b"\x00" * (512 - 128))
