import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from bcp_hpc.errors import InputError
from bcp_hpc.grid.ocim2 import output_struct, read_grid
from bcp_hpc.io import matfile
from bcp_hpc.operators.circulation import synthetic_circulation
from bcp_hpc.operators.io import (TR_from_T, read_hdf5, read_ocim2, read_transport_local_rows, write_hdf5,
                                  write_ocim2)


@pytest.fixture(scope="module")
def small_world(small_grid):
    T, _ = synthetic_circulation(small_grid)
    return small_grid, T


def _same_grid(a, b):
    assert np.array_equal(a.mask, b.mask)
    for f in ("lat", "lon", "zt", "zw", "dz"):
        assert np.allclose(getattr(a, f), getattr(b, f), rtol=1e-14), f
    assert np.allclose(a.area2d[a.mask[:, :, 0]], b.area2d[b.mask[:, :, 0]], rtol=1e-12)
    assert np.allclose(a.box_volume, b.box_volume, rtol=1e-12)
    assert set(a.basins) == set(b.basins)


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_ocim2_mat_round_trip(tmp_path, small_world, version):
    g, T = small_world
    p = str(tmp_path / f"op_{version}.mat")
    write_ocim2(p, g, T, version=version)
    assert matfile.is_v73(p) == (version == "v7.3")
    g2, T2, defects = read_ocim2(p)
    _same_grid(g, g2)
    assert abs(T2 - T).max() <= 1e-15 * abs(T).max()
    assert defects["volume_column_sum_rel"] < 1e-13
    # units: the file stores the convergence-form TR in yr^-1
    d = matfile.load(p)
    TR = d["output"]["TR"]
    assert np.isclose(TR.diagonal()[0], -T.diagonal()[0] * 365 * 86400, rtol=1e-14)


def test_hdf5_round_trip(tmp_path, small_world):
    g, T = small_world
    p = str(tmp_path / "op.h5")
    write_hdf5(p, g, T)
    g2, T2 = read_hdf5(p)
    _same_grid(g, g2)
    assert (T2 != T).nnz == 0


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_local_row_reading_matches_full(tmp_path, small_world, version):
    g, T = small_world
    p = str(tmp_path / f"rows_{version}.mat")
    write_ocim2(p, g, T, version=version)
    rows = np.arange(3, g.nwet, 7)
    part = read_transport_local_rows(p, g, rows, chunk=97)
    assert abs(part - T[rows]).max() <= 1e-15 * abs(T).max()


# ----------------------------------------------------------------------------- bad input
def _write_v5(path, output):
    scipy.io.savemat(path, {"output": output})


def test_missing_mask_variable(tmp_path):
    p = str(tmp_path / "nomask.mat")
    scipy.io.savemat(p, {"something": np.ones(3)})
    with pytest.raises(InputError) as e:
        read_grid(p)
    assert "nomask.mat" in str(e.value) and "M3d" in str(e.value)


def test_grid_shape_mismatch(tmp_path, small_world):
    g, T = small_world
    out = output_struct(g, TR_from_T(T))
    out["grid"]["xt"] = out["grid"]["xt"][:-1]
    p = str(tmp_path / "mismatch.mat")
    _write_v5(p, out)
    with pytest.raises(InputError) as e:
        read_ocim2(p)
    assert "mismatch.mat" in str(e.value) and "output.grid.xt" in str(e.value)


def test_nan_in_grid_fields(tmp_path, small_world):
    g, T = small_world
    out = output_struct(g, TR_from_T(T))
    out["grid"]["zt"] = out["grid"]["zt"].copy()
    out["grid"]["zt"][3] = np.nan
    p = str(tmp_path / "nan.mat")
    _write_v5(p, out)
    with pytest.raises(InputError) as e:
        read_ocim2(p)
    assert "nan.mat" in str(e.value) and "zt" in str(e.value) and "NaN" in str(e.value)


def test_non_conserving_transport(tmp_path, small_world):
    g, T = small_world
    Tbad = sp.csr_matrix(T, copy=True)
    Tbad.data[5] *= 1.5
    p = str(tmp_path / "leaky.mat")
    write_ocim2(p, g, Tbad)
    with pytest.raises(InputError) as e:
        read_ocim2(p)
    assert "leaky.mat" in str(e.value) and "output.TR" in str(e.value) and "conserve" in str(e.value)


def test_transport_size_mismatch(tmp_path, small_world):
    g, T = small_world
    out = output_struct(g, TR_from_T(T)[:-1, :-1])
    p = str(tmp_path / "small.mat")
    _write_v5(p, out)
    with pytest.raises(InputError, match="wet boxes"):
        read_ocim2(p)


def test_corrupt_file(tmp_path):
    p = tmp_path / "corrupt.mat"
    p.write_bytes(b"MATLAB 5.0 MAT-file" + os.urandom(300))
    with pytest.raises(InputError) as e:
        read_grid(str(p))
    assert "corrupt.mat" in str(e.value)


def _cli(*args):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_reports_bad_input_and_exits_nonzero(tmp_path, small_world):
    g, T = small_world
    Tbad = sp.csr_matrix(T, copy=True)
    Tbad.data[5] *= 1.5
    p = str(tmp_path / "leaky.mat")
    write_ocim2(p, g, Tbad)
    r = _cli("inspect", p)
    assert r.returncode != 0
    assert "leaky.mat" in r.stderr and "output.TR" in r.stderr
    r = _cli("inspect", str(tmp_path / "absent.mat"))
    assert r.returncode != 0 and "absent.mat" in r.stderr


def test_cli_export_and_inspect_round_trip(tmp_path):
    p = str(tmp_path / "embedded.h5")
    r = _cli("export", "--out", p)
    assert r.returncode == 0, r.stderr
    r = _cli("inspect", p)
    assert r.returncode == 0, r.stderr
    assert "embedded" in r.stdout and "transport" in r.stdout
    # no temporary files are left behind
    assert sorted(os.listdir(tmp_path)) == ["embedded.h5"]


def test_cli_version_and_info():
    r = _cli("--version")
    assert r.returncode == 0 and "bcp-hpc" in r.stdout
    r = _cli("info")
    assert r.returncode == 0 and "PETSc" in r.stdout and "mumps=yes" in r.stdout
