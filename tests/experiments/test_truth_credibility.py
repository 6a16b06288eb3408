"""A twin's truth against the posterior jointly: the likelihood-ratio statistic of the result file,
recomputed from the written files (the true state, the observations, the box volumes) with the
objective of spec §5.2."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
from scipy.stats import chi2

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")


def _natural(field_zyx, mask_zyx):
    """A (depth, lat, lon) field of the state file in natural order (OCIM2's ``find(M3d(:))``)."""
    a = np.transpose(field_zyx, (1, 2, 0))
    m = np.transpose(mask_zyx, (1, 2, 0))
    return a.ravel(order="F")[np.flatnonzero(m.ravel(order="F"))]


def test_likelihood_ratio_of_the_twin_equals_the_one_recomputed_from_its_files(tmp_path):
    out = tmp_path / "twin"
    r = subprocess.run([sys.executable, "-m", "bcp_hpc.cli.main", "invert", "--world", "tiny", "--out", str(out)],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())
    cred = res["truth_credibility"]
    with h5py.File(out / "state.h5", "r") as h:
        wet = np.isfinite(h["DIP"][()])
        y = _natural(h["DIP_observed"][()], wet)
        V = _natural(h["box_volume"][()], wet)
    with h5py.File(out / "twin_truth.h5", "r") as h:
        truth_dip = h["state"][0]
    ok = np.isfinite(y)
    w = np.where(ok, V, 0.0) / V[ok].sum()
    ybar = (w[ok] * y[ok]).sum()
    coef = 1.0 / (w[ok] * (y[ok] - ybar) ** 2).sum()
    f_true = 0.5 * coef * (w[ok] * (truth_dip[ok] - y[ok]) ** 2).sum()
    s2 = 2.0 * res["objective"] / ok.sum()
    assert abs(res["posterior"]["noise_variance"] - s2) <= 1e-12 * s2
    lr = 2.0 * (f_true - res["objective"]) / s2
    k = cred["parameters"]
    assert k == 4 and abs(cred["likelihood_ratio"] - lr) <= 1e-6 * abs(lr), (cred["likelihood_ratio"], lr)
    assert abs(cred["likelihood_ratio_p_value"] - chi2.sf(lr, 4)) < 1e-6
    assert cred["within_likelihood_region"] == (lr <= chi2.ppf(0.95, 4))
    assert "likelihood region of the 4 constrained parameters" in r.stdout
