"""Posterior uncertainty (Laplace approximation) and eigen-analysis of the Hessian.

Covariance of the transformed parameters: ``Sigma = s2 * H^-1`` with, by default, the
group's estimate ``s2 = 2 f(x*) / N_obs`` (spec §5.6, BGC-2022 ``errorbar.m``);
``noise_scale="none"`` uses ``H^-1`` directly (priors/likelihood taken literally).
For a log parameter the 1-sigma interval is ``[exp(x - s), exp(x + s)]`` (asymmetric).  A
parameter whose transformed standard deviation exceeds :data:`UNCONSTRAINED_SIGMA_X` (a factor
e^5 = 148 either way for a log parameter) is *unconstrained* by the data: its interval and sigma
are None (``null`` in JSON), and the reports say "unconstrained" instead of a meaningless figure.
Where the objective is flat to round-off or curves down along a direction (the Hessian is not
positive definite, as along a flat removal rate near its optimum), ``H^-1`` is no covariance: its
diagonal can be negative, which would read as a σ of zero.  The covariance is then ``s²`` times the
pseudo-inverse over the directions of positive curvature, and the parameters carrying the others
(:func:`downward_parameters`) are reported as unconstrained.

The Hessian scaled to unit diagonal is eigen-decomposed with SLEPc: the eigenvector of the
largest eigenvalue is the best-constrained parameter combination, that of the smallest
the worst-constrained one.
"""
from __future__ import annotations

import numpy as np

from ..petsc_env import import_petsc4py, import_slepc4py

#: transformed standard deviation above which a parameter is reported as unconstrained
UNCONSTRAINED_SIGMA_X = 5.0


def noise_variance(f: float, n_obs: int, noise_scale: str = "code") -> float:
    """The posterior's ``s²`` at objective ``f``: ``2 f / N_obs`` (``"code"``), or 1 (``"none"``)."""
    return 2.0 * f / n_obs if noise_scale == "code" else 1.0


def _round_off(lam) -> float:
    """Eigenvalues at or below this are zero to round-off (numerical rank test ``n ε max|λ|``)."""
    return len(lam) * np.finfo(float).eps * float(np.abs(lam).max(initial=0.0))


def downward_parameters(H) -> list:
    """Indices of the parameters along which the objective is flat to round-off or curves down.

    While the Hessian restricted to the remaining parameters has an eigenvalue at or below
    ``n ε max|λ|`` (its numerical rank test), the parameter with the largest share of that
    eigenvector is left out; the Hessian of those that remain is positive definite."""
    H = 0.5 * (np.asarray(H, float) + np.asarray(H, float).T)
    keep = list(range(H.shape[0]))
    out = []
    while keep:
        lam, V = np.linalg.eigh(H[np.ix_(keep, keep)])
        if lam[0] > _round_off(lam):
            break
        j = keep[int(np.argmax(np.abs(V[:, 0])))]
        out.append(j)
        keep.remove(j)
    return sorted(out)


def posterior(params, x, f, H, n_obs: int, noise_scale: str = "code") -> dict:
    """Laplace posterior of the optimized parameters at ``x``: covariance, correlation, ±1σ intervals.

    Parameters of :func:`downward_parameters` are unconstrained (``nonpositive_curvature`` in their
    record); the covariance leaves out the directions of non-positive curvature (pseudo-inverse)."""
    names = params.optimized
    H = np.asarray(H, float)
    s2 = noise_variance(f, n_obs, noise_scale)
    down = downward_parameters(H) if np.all(np.isfinite(H)) else []
    if down:
        lam, V = np.linalg.eigh(0.5 * (H + H.T))
        pos = lam > _round_off(lam)
        cov = s2 * (V[:, pos] / lam[pos]) @ V[:, pos].T
    else:
        cov = s2 * np.linalg.inv(H)
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
        unconstrained = bool(k in down or not np.isfinite(sd[k]) or sd[k] > UNCONSTRAINED_SIGMA_X)
        if unconstrained:
            lo = hi = sigma = None
        else:
            lo, hi = p.from_x(x[k] - sd[k]), p.from_x(x[k] + sd[k])
            sigma = (hi - lo) / 2.0
        out["parameters"][n] = {"value": v, "sigma": sigma, "lower_1sigma": lo, "upper_1sigma": hi,
                                "sigma_x": None if k in down or not np.isfinite(sd[k]) else float(sd[k]),
                                "transform": p.transform, "units": p.units, "at_bound": at_bound,
                                "poorly_constrained": unconstrained, "nonpositive_curvature": k in down}
    out["eigen"] = hessian_eigen(H, names)
    return out


def stopping_measures(g, H, s2: float, free=None) -> tuple:
    """``(remaining_step_sigma, flat_decrease)`` at one iterate, from one eigen-decomposition of ``H``
    restricted to the ``free`` parameters (a boolean mask leaving out those a bound holds); ``inf`` for
    both where ``H`` or ``g`` is not finite.  See :func:`remaining_step_sigma` and :func:`flat_decrease`."""
    g = np.asarray(g, float)
    H = np.asarray(H, float)
    if free is not None:
        idx = np.flatnonzero(np.asarray(free, bool))
        g, H = g[idx], H[np.ix_(idx, idx)]
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H)) and s2 > 0):
        return float("inf"), float("inf")
    if g.size == 0:
        return 0.0, 0.0
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    proj = V.T @ g
    kept = lam > s2 / UNCONSTRAINED_SIGMA_X ** 2
    step = float(np.sqrt(np.sum(proj[kept] ** 2 / lam[kept]) / s2))
    # left out: the best decrease within |t| <= UNCONSTRAINED_SIGMA_X; a downward direction by its slope only
    slope, curv = np.abs(proj[~kept]), np.maximum(lam[~kept], 0.0)
    t = np.full_like(slope, UNCONSTRAINED_SIGMA_X)
    up = curv > 0
    t[up] = np.minimum(slope[up] / curv[up], UNCONSTRAINED_SIGMA_X)
    return step, float(np.sum(slope * t - 0.5 * curv * t ** 2) / s2)


def remaining_step_sigma(g, H, s2: float, free=None) -> float:
    """How far the optimum the quadratic model predicts lies from the current iterate, in posterior σ.

    The Newton step ``δ = −H⁻¹ g`` measured in the posterior's own metric (covariance ``s² H⁻¹``, as in
    :func:`posterior`): ``sqrt(gᵀ H⁻¹ g / s²)``.  By Cauchy–Schwarz no parameter's share of the step
    exceeds this many of its own posterior σ, so an inversion stopped below 0.05 reports every
    parameter within 0.05 σ of its optimum along the directions counted, whatever the parameters'
    scales and correlations.  Its square is twice the decrease of the objective the model promises, in
    units of ``s²``.

    Only the data-constrained part counts: eigen-directions of ``H`` (restricted to the ``free``
    parameters, a boolean mask leaving out those a bound holds) whose posterior standard deviation
    ``sqrt(s²/λ)`` exceeds :data:`UNCONSTRAINED_SIGMA_X` (including ``λ ≤ 0``) are left out; what the
    objective still promises along them is :func:`flat_decrease`.  ``inf`` where ``H`` or ``g`` is not
    finite."""
    return stopping_measures(g, H, s2, free)[0]


def flat_decrease(g, H, s2: float, free=None) -> float:
    """How much lower the objective promises to go along the directions :func:`remaining_step_sigma`
    leaves out (flat: posterior σ above :data:`UNCONSTRAINED_SIGMA_X`, or curving down), in units of
    ``s²``: log-likelihood units.

    Along each such eigen-direction, the quadratic model's best decrease within a step of at most
    that many transformed units; along one that curves down, the slope's share only (``|vᵀg|`` times
    that step: a plateau's slight downward curvature is no promise of descent).  A flat direction
    without slope promises nothing; one along which the objective still falls is no optimum yet,
    however small ``|g|`` is.  ``inf`` where ``H`` or ``g`` is not finite."""
    return stopping_measures(g, H, s2, free)[1]


def constrained_distance_sigma(result, other) -> float:
    """How far apart two inversion results are, in posterior σ of ``result``, along the directions the
    data constrain.

    ``result`` and ``other`` are result records as written to ``result.json``/``joint_result.json``
    (``parameters`` with ``value`` and ``transform``, ``posterior`` with ``names`` and ``covariance_x``).
    The difference of the transformed parameters (log for log parameters) is measured as
    ``sqrt(Σ_k (v_kᵀ dx)² / μ_k)`` over the eigenpairs ``(μ_k, v_k)`` of ``result``'s covariance with
    ``μ_k ≤`` :data:`UNCONSTRAINED_SIGMA_X` ², the metric of :func:`remaining_step_sigma`: two runs
    each within their remaining step of one optimum lie at most the sum of those steps apart (to the
    quadratic model's accuracy).  Directions without posterior variance (curvature not positive, so
    left out of the covariance by :func:`posterior`) do not count either."""
    names = result["posterior"]["names"]
    mine, theirs = result["parameters"], other["parameters"]
    dx = np.array([np.log(theirs[n]["value"] / mine[n]["value"]) if mine[n]["transform"] == "log"
                   else theirs[n]["value"] - mine[n]["value"] for n in names])
    mu, V = np.linalg.eigh(np.asarray(result["posterior"]["covariance_x"], float))
    kept = (mu > _round_off(mu)) & (mu <= UNCONSTRAINED_SIGMA_X ** 2)
    return float(np.sqrt(np.sum((V[:, kept].T @ dx) ** 2 / mu[kept])))


#: the credible region checked for a twin's truth
CREDIBLE_LEVEL = 0.95


def truth_credibility(x, x_true, cov, constrained, f_opt=None, f_true=None, noise_variance=None) -> dict:
    """Whether a twin's true parameters lie inside the posterior's joint 95 % region, two ways.

    *Likelihood ratio* (with ``f_opt``, ``f_true``, ``noise_variance``): ``LR = 2 (f(x_true) − f(x̂)) / s²``
    (the objective is ``s²`` times the negative log-likelihood, :func:`posterior`); by Wilks' theorem
    it follows χ² with one degree of freedom per constrained parameter, whatever the shape of the
    posterior, so the truth lies inside the 95 % likelihood region when LR is below χ²'s 95 %
    quantile.  This is the test to read.

    *Laplace ellipsoid*: ``d² = δᵀ Σ_c⁻¹ δ`` with ``δ = x̂ − x_true`` (transformed parameters) and ``Σ_c``
    the posterior covariance of the ``constrained`` parameters (indices; those with a posterior σ).
    It follows the same χ² only where the posterior is Gaussian; where a ridge between correlated
    parameters is curved (the P model's α and β), the ellipsoid is too thin across the ridge and d²
    is inflated (docs/models.md).

    Unlike "every parameter within 2σ" (for 21 independent parameters a 0.95²¹ ≈ 0.34 chance event,
    and blind to correlations), a calibrated test fails in 5 % of draws."""
    from scipy.stats import chi2
    idx = list(constrained)
    k = len(idx)
    out = {"parameters": k, "level": CREDIBLE_LEVEL, "quantile": None, "mahalanobis_squared": None,
           "p_value": None, "within": None, "likelihood_ratio": None, "likelihood_ratio_p_value": None,
           "within_likelihood_region": None}
    if k == 0:
        return out
    delta = np.asarray(x, float)[idx] - np.asarray(x_true, float)[idx]
    C = np.asarray(cov, float)[np.ix_(idx, idx)]
    d2 = float(delta @ np.linalg.lstsq(C, delta, rcond=None)[0])
    q = float(chi2.ppf(CREDIBLE_LEVEL, k))
    out.update(quantile=q, mahalanobis_squared=d2, p_value=float(chi2.sf(d2, k)), within=bool(d2 <= q))
    if f_true is not None and f_opt is not None and noise_variance:
        lr = 2.0 * (float(f_true) - float(f_opt)) / float(noise_variance)
        out.update(likelihood_ratio=lr, likelihood_ratio_p_value=float(chi2.sf(max(lr, 0.0), k)),
                   within_likelihood_region=bool(lr <= q))
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
