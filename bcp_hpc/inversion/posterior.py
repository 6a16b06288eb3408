"""Posterior uncertainty (Laplace approximation) and eigen-analysis of the Hessian.

Covariance of the transformed parameters: ``Sigma = s2 * H^-1`` with, by default, the
group's estimate ``s2 = 2 f(x*) / N_obs`` (spec §5.6, BGC-2022 ``errorbar.m``);
``noise_scale="none"`` uses ``H^-1`` directly (priors/likelihood taken literally).
For a log parameter the 1-sigma interval is ``[exp(x - s), exp(x + s)]`` (asymmetric).  A
parameter whose transformed standard deviation exceeds :data:`UNCONSTRAINED_SIGMA_X` (a factor
e^5 = 148 either way for a log parameter) is *unconstrained* by the data: its interval and sigma
are None (``null`` in JSON), and the reports say "unconstrained" instead of a meaningless figure.

The Hessian scaled to unit diagonal is eigen-decomposed with SLEPc: the eigenvector of the
largest eigenvalue is the best-constrained parameter combination, that of the smallest
the worst-constrained one.
"""
from __future__ import annotations

import numpy as np

from ..petsc_env import import_petsc4py, import_slepc4py

#: transformed standard deviation above which a parameter is reported as unconstrained
UNCONSTRAINED_SIGMA_X = 5.0


def posterior(params, x, f, H, n_obs: int, noise_scale: str = "code") -> dict:
    names = params.optimized
    H = np.asarray(H, float)
    s2 = 2.0 * f / n_obs if noise_scale == "code" else 1.0
    try:
        cov = s2 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        cov = s2 * np.linalg.pinv(H)      # singular Hessian (e.g. an optimum on a bound): pseudo-inverse
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    # null (JSON) where a parameter has no finite variance
    corr = [[float(np.clip(c, -1.0, 1.0)) if np.isfinite(c) else None for c in row] for row in corr]
    out = {"noise_variance": s2, "covariance_x": cov.tolist(), "correlation": corr, "names": list(names),
           "parameters": {}}
    for k, n in enumerate(names):
        p = params[n]
        v = p.from_x(x[k])
        lo_b, hi_b = p.bounds
        at_bound = bool(np.isclose(v, lo_b, rtol=1e-6, atol=0.0)
                        or (np.isfinite(hi_b) and np.isclose(v, hi_b, rtol=1e-6, atol=0.0)))
        unconstrained = bool(not np.isfinite(sd[k]) or sd[k] > UNCONSTRAINED_SIGMA_X)
        if unconstrained:
            lo = hi = sigma = None
        else:
            lo, hi = p.from_x(x[k] - sd[k]), p.from_x(x[k] + sd[k])
            sigma = (hi - lo) / 2.0
        out["parameters"][n] = {"value": v, "sigma": sigma, "lower_1sigma": lo, "upper_1sigma": hi,
                                "sigma_x": float(sd[k]) if np.isfinite(sd[k]) else None,
                                "transform": p.transform, "units": p.units, "at_bound": at_bound,
                                "poorly_constrained": unconstrained}
    out["eigen"] = hessian_eigen(H, names)
    return out


def hessian_eigen(H, names) -> dict:
    """SLEPc eigen-decomposition of ``D^-1/2 H D^-1/2`` (D = diag H)."""
    PETSc = import_petsc4py()
    SLEPc = import_slepc4py()
    H = np.asarray(H, float)
    d = np.sqrt(np.abs(np.diag(H)))
    d[~(d > 0)] = 1.0                      # an exactly unconstrained parameter: leave its row unscaled
    S = np.nan_to_num(H / np.outer(d, d))
    m = S.shape[0]
    A = PETSc.Mat().createDense((m, m), array=np.ascontiguousarray(S), comm=PETSc.COMM_SELF)
    eps = SLEPc.EPS().create(comm=PETSc.COMM_SELF)
    try:
        eps.setOperators(A)
        eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
        eps.setDimensions(nev=m)
        eps.setType(SLEPc.EPS.Type.LAPACK)
        eps.solve()
        vals, vecs = [], []
        vr = A.createVecRight()
        for i in range(eps.getConverged()):
            lam = eps.getEigenpair(i, vr)
            vals.append(float(np.real(lam)))
            vecs.append(vr.getArray().copy())
        vr.destroy()
    finally:
        eps.destroy()
        A.destroy()
    order = np.argsort(vals)[::-1]
    vals = [vals[i] for i in order]
    vecs = [vecs[i] for i in order]

    def combo(v):
        v = v / np.abs(v).max()
        return {n: float(c) for n, c in zip(names, v)}

    return {"eigenvalues": vals, "condition_number": vals[0] / vals[-1] if vals[-1] > 0 else float("inf"),
            "best_constrained": combo(vecs[0]), "worst_constrained": combo(vecs[-1])}
