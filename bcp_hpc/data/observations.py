"""Observations for a misfit from the user's data sources (``[world] inputs``: `bcp-hpc data build`
files and OCIM2 data folders): the binned observation fields only, never fill values, preprocessed
as spec §A.1 says (the group's ``rmOutliers``: negative values and values outside the 0.1-99.9
percentile range are not observations; DIP below 0.05 mmol m-3 neither), and the volume-weighted
constants derived from them (Appendix A.3)."""
from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from .catalog import open_data

#: percentile range kept by the outlier filter
PERCENTILES = (0.1, 99.9)
#: tracer -> lowest value that counts as an observation (mmol m-3)
FLOORS = {"DIP": 0.05}


def observation_limits(values, tracer: str = "", percentiles=PERCENTILES):
    """``(lo, hi)``: the percentile range of the values that pass the sign and floor tests (linear
    interpolation), or None when fewer than three do (then no percentile test)."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (v >= 0)
    floor = FLOORS.get(tracer)
    if floor is not None:
        ok &= v >= floor
    if ok.sum() <= 2:
        return None
    lo, hi = np.percentile(v[ok], percentiles)
    return float(lo), float(hi)


def filter_observations(values, tracer: str = "", percentiles=PERCENTILES, limits="whole") -> np.ndarray:
    """A copy of ``values`` (natural order, NaN = unobserved) with negatives, values below the tracer's
    floor and values outside the percentile range set to NaN.  ``limits``: the range of the whole
    field (:func:`observation_limits`); computed from ``values`` when they are the whole field, given
    when they are one rank's boxes."""
    if isinstance(limits, str):
        limits = observation_limits(values, tracer, percentiles)
    v = np.array(values, dtype=float)
    v[~np.isfinite(v) | (v < 0)] = np.nan
    floor = FLOORS.get(tracer)
    if floor is not None:
        v[v < floor] = np.nan
    if limits is not None:
        lo, hi = limits
        v[(v < lo) | (v > hi)] = np.nan
    return v


#: observable -> the fields that hold it, in order of preference (a data build file; an OCIM2 folder)
OBSERVATION_FIELDS = {"DIP": ("po4_obs",), "DIC": ("dic_obs", "dic"), "ALK": ("alk_obs",), "O2": ("o2_obs",),
                      "DOC": ("doc_obs",)}
#: recipe section that builds each observation field
RECIPE = {"DIP": "[fields.po4_obs]", "DIC": "[fields.dic_obs] and [fields.dic_ant]", "ALK": "[fields.alk_obs]",
          "O2": "[fields.o2_obs]", "DOC": "[fields.doc_obs]"}


def read_observation(sources, name: str, grid, remove_anthropogenic: bool = True):
    """``(values, info)`` of observable ``name`` (natural order, mmol m-3, NaN = unobserved) from the last
    of ``sources`` that holds it; DIC with the anthropogenic CO2 removed (a folder's ``dic`` field is
    already; a file's ``dic_obs`` minus its ``dic_ant``)."""
    if not sources:
        raise InputError(f"real {name} observations need [world] inputs (a `bcp-hpc data build` file with "
                         f"{RECIPE.get(name, name)}, or an OCIM2 data folder)")
    for path in reversed(list(sources)):
        with open_data(path) as src:
            have = src.fields()
            for field in OBSERVATION_FIELDS.get(name, ()):
                if field not in have:
                    continue
                values = np.array(src.field(field, grid), dtype=float)
                info = {"source": path, "field": field}
                if field == "dic_obs" and remove_anthropogenic:
                    if "dic_ant" not in have:
                        raise InputError("DIC observations must have the anthropogenic CO2 removed (the model is "
                                         "pre-industrial): add [fields.dic_ant] (e.g. GLODAPv2 Cant) to the recipe, "
                                         "or set [joint] remove_anthropogenic = false", path=path, variable="dic_obs")
                    values = values - np.asarray(src.field("dic_ant", grid), dtype=float)
                    info["anthropogenic_removed"] = "dic_ant"
                elif field == "dic" and os.path.isdir(path):
                    info["anthropogenic_removed"] = "in the folder's field"
                limits = observation_limits(values, name)
                filtered = filter_observations(values, name, limits=limits)
                info.update(n_raw=int(np.isfinite(values).sum()), n_obs=int(np.isfinite(filtered).sum()),
                            limits=None if limits is None else list(limits))
                if info["n_obs"] < 2:
                    raise InputError(f"fewer than two usable {name} observations after the filter of spec A.1",
                                     path=path, variable=field)
                return filtered, info
    raise InputError(f"no {name} observations in {', '.join(sources)}: a `bcp-hpc data build` file needs "
                     f"{RECIPE.get(name, name)} in its recipe (observations are never taken from filled fields)")


def volume_mean(grid, values, where=None) -> float:
    """Volume-weighted mean of the observed boxes (optionally only where ``where``), mmol m-3."""
    ok = np.isfinite(values) & (True if where is None else where)
    if not ok.any():
        raise InputError("no observed boxes for a volume-weighted mean")
    V = grid.box_volume
    return float((values[ok] * V[ok]).sum() / V[ok].sum())


def read_local_observation(info: dict, name: str, grid, local_natural):
    """This rank's boxes (``local_natural``, local order) of observable ``name`` as :func:`read_observation`
    read it whole (``info``: what it returned) from a `bcp-hpc data build` file, read by hyperslab from the
    same file and filtered with the whole field's limits: the same values, bit for bit.  (An OCIM2 data
    folder's ``.mat`` fields have no partial read: rank 0 sends those.)"""
    from .parallel import read_local_hyperslab
    path = info["source"]
    values = np.asarray(read_local_hyperslab(path, info["field"], grid, local_natural), dtype=float)
    if info.get("anthropogenic_removed") == "dic_ant":
        values = values - np.asarray(read_local_hyperslab(path, "dic_ant", grid, local_natural), dtype=float)
    limits = info.get("limits")
    return filter_observations(values, name, limits=None if limits is None else tuple(limits))
