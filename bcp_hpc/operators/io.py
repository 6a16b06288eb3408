"""Grid + transport operator files: the OCIM2 ``.mat`` layout (round trip) and HDF5.

OCIM2 stores ``TR`` in yr^-1 in *convergence* form (``dc/dt = TR c``); the
package uses ``T = -TR / s_y`` in s^-1 (spec §1.3) with ``s_y = 365 d``.
"""
from __future__ import annotations

import h5py
import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..grid.grid import Grid
from ..grid.ocim2 import grid_from_matdict, output_struct
from ..io import matfile
from ..io.atomic import atomic_path
from .transport import conservation_defects, distributed_conservation_defects

SECONDS_PER_YEAR = 365.0 * 86400.0
#: Largest accepted relative conservation defect of a transport operator read from a file.
DEFAULT_CONSERVATION_TOL = 1e-8


def T_from_TR(TR) -> sp.csr_matrix:
    """``T = -TR / s_y`` (s^-1) from OCIM2's convergence-form ``TR`` (yr^-1)."""
    return sp.csr_matrix(-sp.csr_matrix(TR) / SECONDS_PER_YEAR)


def TR_from_T(T) -> sp.csc_matrix:
    return sp.csc_matrix(-sp.csr_matrix(T) * SECONDS_PER_YEAR)


def check_transport(T, grid: Grid, path: str, variable: str = "output.TR", tol: float = DEFAULT_CONSERVATION_TOL):
    """Validate shape, finiteness and mass conservation of ``T``; return the defects dict."""
    if T.shape != (grid.nwet, grid.nwet):
        raise InputError(f"transport matrix is {T.shape[0]}x{T.shape[1]} but the mask has {grid.nwet} wet boxes",
                         path=path, variable=variable)
    data = sp.csr_matrix(T).data
    if not np.all(np.isfinite(data)):
        raise InputError(f"transport matrix has {np.count_nonzero(~np.isfinite(data))} NaN/Inf entries",
                         path=path, variable=variable)
    d = conservation_defects(T, grid.box_volume)
    if d["volume_column_sum_rel"] > tol:
        raise InputError(f"transport matrix does not conserve mass: max |1^T V T| / max|diag T| = "
                         f"{d['volume_column_sum_rel']:.3e} > tolerance {tol:.1e}", path=path, variable=variable)
    return d


def read_ocim2(path: str, *, conservation_tol: float = DEFAULT_CONSERVATION_TOL, need_transport: bool = True):
    """Read grid and (if present) transport from an OCIM2-layout file.

    Returns ``(grid, T, defects)``; ``T`` is None when the file has no ``TR``
    and ``need_transport`` is False.
    """
    d = matfile.load(path)
    grid = grid_from_matdict(d, path)
    root = d["output"] if isinstance(d.get("output"), dict) else d
    var = "output.TR" if root is not d else "TR"
    if "TR" not in root:
        if need_transport:
            raise InputError("no transport matrix found", path=path, variable=var)
        return grid, None, None
    TR = root["TR"]
    if not sp.issparse(TR):
        raise InputError(f"expected a sparse matrix, got {type(TR).__name__}", path=path, variable=var)
    T = T_from_TR(TR)
    defects = check_transport(T, grid, path, var, conservation_tol)
    return grid, T, defects


def write_ocim2(path: str, grid: Grid, T=None, version: str = "v5"):
    """Write grid (+ ``TR`` from ``T``) in the OCIM2 ``.mat`` layout, atomically."""
    out = {"output": output_struct(grid, TR_from_T(T) if T is not None else None)}
    with atomic_path(path, ".mat") as tmp:
        if version == "v5":
            matfile.save_v5(tmp, out)
        elif version == "v7.3":
            matfile.save_v73(tmp, out)
        else:
            raise ValueError(f"unknown MAT version '{version}' (v5 or v7.3)")


def write_hdf5(path: str, grid: Grid, T=None, attrs: dict | None = None):
    """Write grid (+ ``T`` in s^-1 as CSR) to HDF5 with units attributes, atomically."""
    from ..io.netcdf_h5 import DimensionedWriter
    with atomic_path(path, ".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            # every dataset has named dimensions: each group opens with xarray (engine="h5netcdf", group=...)
            g = f.create_group("grid")
            w = DimensionedWriter(g)
            w.dimension("lat", grid.lat, "degrees_north")
            w.dimension("lon", grid.lon, "degrees_east")
            w.dimension("depth", grid.zt, "m", positive="down")
            w.variable("mask", grid.mask.astype(np.uint8), ("lat", "lon", "depth"), "1")
            for name, arr, units in (("zt", grid.zt, "m"), ("zw", grid.zw, "m"), ("dz", grid.dz, "m")):
                w.variable(name, arr, ("depth",), units)
            w.variable("area", grid.area2d, ("lat", "lon"), "m2")
            g.attrs["name"] = grid.name
            g.attrs["n_euphotic_layers"] = grid.n_euphotic_layers
            b = g.create_group("basins")
            for k, v in grid.basins.items():
                DimensionedWriter(b).variable(k, np.asarray(v).astype(np.uint8), ("/grid/lat", "/grid/lon",
                                                                                 "/grid/depth"), "1")
            if T is not None:
                t = f.create_group("transport")
                tw = DimensionedWriter(t)
                Tc = sp.csr_matrix(T)
                tw.bare_dimension("nonzero", Tc.nnz)
                tw.bare_dimension("row_pointer", Tc.shape[0] + 1)
                tw.variable("data", Tc.data, ("nonzero",), "s-1")
                tw.variable("indices", Tc.indices, ("nonzero",), "1")
                tw.variable("indptr", Tc.indptr, ("row_pointer",), "1")
                t.attrs["shape"] = Tc.shape
                t.attrs["units"] = "s-1"
                t.attrs["convention"] = "dc/dt + T c = s (divergence form), natural wet ordering (Fortran iwet)"
            for k, v in (attrs or {}).items():
                f.attrs[k] = v


def read_hdf5(path: str):
    """Read what :func:`write_hdf5` wrote: ``(grid, T or None)``."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"cannot open as HDF5 ({exc})", path=path) from exc
    with f:
        if "grid" not in f:
            raise InputError("no 'grid' group", path=path, variable="grid")
        g = f["grid"]
        try:
            grid = Grid(mask=g["mask"][()], lat=g["lat"][()], lon=g["lon"][()], zw=g["zw"][()], zt=g["zt"][()],
                        dz=g["dz"][()], area2d=g["area"][()],
                        basins={k: g["basins"][k][()].astype(bool) for k in g.get("basins", {})},
                        name=str(g.attrs.get("name", path)), n_euphotic_layers=int(g.attrs.get("n_euphotic_layers", 2)))
        except KeyError as exc:
            raise InputError("missing dataset", path=path, variable=f"grid/{exc.args[0]}") from exc
        T = None
        if "transport" in f:
            t = f["transport"]
            T = sp.csr_matrix((t["data"][()], t["indices"][()], t["indptr"][()]), shape=tuple(t.attrs["shape"]))
    return grid, T


def _find_tr_h5(f):
    for name in ("output/TR", "TR"):
        if name in f:
            return f[name], name.replace("/", ".")
    return None, None


def read_transport_local_rows(path: str, grid: Grid, rows_natural: np.ndarray, chunk: int = 2_000_000):
    """Rows ``rows_natural`` of ``T`` (s^-1) as CSR (len(rows) x n) read from an OCIM2 file.

    v7.3 (HDF5) files are streamed in chunks of the CSC arrays, so a rank holds
    only its own rows plus one chunk; v5 files cannot be read partially and are
    loaded whole, then cut.
    """
    rows_natural = np.asarray(rows_natural, dtype=np.int64)
    if matfile.is_v73(path):
        with h5py.File(path, "r") as f:
            g, var = _find_tr_h5(f)
            if g is None:
                raise InputError("no transport matrix found", path=path, variable="output.TR")
            jc = g["jc"][()].astype(np.int64)
            n = jc.size - 1
            if n != grid.nwet or int(g.attrs.get("MATLAB_sparse", n)) != grid.nwet:
                raise InputError(f"transport matrix has {n} columns but the mask has {grid.nwet} wet boxes",
                                 path=path, variable=var)
            pos = -np.ones(grid.nwet, dtype=np.int64)
            pos[rows_natural] = np.arange(rows_natural.size)
            col_of = np.repeat(np.arange(n), np.diff(jc)) if jc[-1] <= 50_000_000 else None
            r_all, c_all, v_all = [], [], []
            for s in range(0, int(jc[-1]), chunk):
                e = min(s + chunk, int(jc[-1]))
                ir = g["ir"][s:e].astype(np.int64)
                dat = g["data"][s:e]
                cols = col_of[s:e] if col_of is not None else np.searchsorted(jc, np.arange(s, e), side="right") - 1
                keep = pos[ir] >= 0
                r_all.append(pos[ir[keep]])
                c_all.append(cols[keep])
                v_all.append(dat[keep])
            r = np.concatenate(r_all)
            c = np.concatenate(c_all)
            v = np.concatenate(v_all)
            if not np.all(np.isfinite(v)):
                raise InputError("transport matrix has NaN/Inf entries", path=path, variable=var)
            # times the reciprocal, as SciPy divides a sparse matrix by a scalar: the same values as T_from_TR
            return sp.csr_matrix((-v * (1.0 / SECONDS_PER_YEAR), (r, c)), shape=(rows_natural.size, grid.nwet))
    _, T, _ = read_ocim2(path, conservation_tol=np.inf)
    return T[rows_natural, :]


def load_transport_petsc(path: str, dgrid, conservation_tol: float = DEFAULT_CONSERVATION_TOL):
    """Distributed PETSc ``T`` (s^-1) from an OCIM2 file, each rank reading only its own rows.

    Mass conservation ``1^T V T`` is measured in parallel (``T^T`` applied to the
    volume vector) and reported; above ``conservation_tol`` an :class:`InputError` is raised.
    Returns ``(Mat, defects)``.
    """
    grid = dgrid.grid
    local = read_transport_local_rows(path, grid, dgrid.local_natural)
    T = dgrid.local_rows_to_petsc(local)
    defects = distributed_conservation_defects(T, dgrid)
    if defects["volume_column_sum_rel"] > conservation_tol:
        T.destroy()
        raise InputError(f"transport matrix does not conserve mass: max |1^T V T| / max|diag T| = "
                         f"{defects['volume_column_sum_rel']:.3e} > tolerance {conservation_tol:.1e}",
                         path=path, variable="output.TR")
    return T, defects
