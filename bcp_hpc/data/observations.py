"""Preprocessing of binned observations before they enter a misfit (spec §A.1, the group's
``rmOutliers``): negative values and values outside the 0.1-99.9 percentile range of the field are
not observations; DIP below 0.05 mmol m-3 neither."""
from __future__ import annotations

import numpy as np

#: percentile range kept by the outlier filter
PERCENTILES = (0.1, 99.9)
#: tracer -> lowest value that counts as an observation (mmol m-3)
FLOORS = {"DIP": 0.05}


def filter_observations(values, tracer: str = "", percentiles=PERCENTILES) -> np.ndarray:
    """A copy of ``values`` (natural order, NaN = unobserved) with negatives, values below the tracer's
    floor and values outside the percentile range set to NaN (percentiles of the remaining values,
    linear interpolation)."""
    v = np.array(values, dtype=float)
    v[~np.isfinite(v) | (v < 0)] = np.nan
    floor = FLOORS.get(tracer)
    if floor is not None:
        v[v < floor] = np.nan
    ok = np.isfinite(v)
    if ok.sum() > 2:
        lo, hi = np.percentile(v[ok], percentiles)
        v[ok & ((v < lo) | (v > hi))] = np.nan
    return v
