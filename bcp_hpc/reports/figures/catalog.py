"""Which figures a run folder has the data for, and how each is drawn from its files.

A figure applies when the arrays it draws were saved: the NPP maps and the NPP(sigma2) curve by a
sigma2 sweep, the obs-vs-model histograms and sections by any inversion with ``<tracer>_observed``
fields, the product maps by a joint inversion's maps, the Taylor diagram by a run with trap stations,
the age section by the main job, the scaling ladder by ``bench scaling``.  Each builder returns
:class:`Figure` records or raises :class:`NotApplicable` with the reason, which the report prints."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..rundir import RunFolder, read_state
from .names import FIGURE_NAMES


class NotApplicable(Exception):
    """The run has not saved what the figure draws (the message says what is missing)."""


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    paths: list = field(default_factory=list)     #: PNG first, then SVG


#: units of the observed tracers (mmol m-3), for axis labels
UNITS = "mmol m$^{-3}$"


def _main_runs(folder: RunFolder) -> list:
    """The sweep's sigma2 runs without the kappa sensitivity runs, in sweep order."""
    return [inv for inv in folder.inversions if inv.label.startswith("s2_") and "_k" not in inv.label]


def _primary(folder: RunFolder) -> list:
    """The inversions whose fields the report draws one by one: all of a single run or of the NPP
    products, the first sigma2 run of a sweep."""
    with_state = [inv for inv in folder.inversions if inv.state_path and inv.result]
    main = _main_runs(folder)
    if main:
        return [inv for inv in main if inv.state_path and inv.result][:1]
    return with_state[:3]


def _product(inv) -> str:
    return (inv.result or {}).get("npp_product") or inv.label or "run"


def _r2(result: dict, tracer: str):
    d = (result or {}).get("diagnostics", {})
    if tracer in d.get("fit", {}):
        return d["fit"][tracer]["r2"]
    return d.get(f"r2_{tracer.lower()}")


def _observed(inv) -> list:
    """The observed tracers of an inversion's state file, in the run's order (``variant.observed``)."""
    import h5py
    with h5py.File(inv.state_path, "r") as h:
        have = [k[:-len("_observed")] for k in h if k.endswith("_observed")]
    order = ((inv.result or {}).get("variant") or {}).get("observed") or []
    return [t for t in order if t in have] + [t for t in have if t not in order]


# ---------------------------------------------------------------------------------------------- builders

def npp_maps_figure(folder, out_dir, formats):
    from .maps import npp_maps
    if folder.sweep and folder.sweep.get("h5"):
        arr = read_state(folder.sweep["h5"], ("npp_map", "sigma2", "lat", "lon"))
        runs = folder.sweep.get("runs") or []
        keep = [k for k, r in enumerate(runs) if r.get("kappa_l_per_s") == runs[0].get("kappa_l_per_s")
                and r.get("kappa_p_per_s") == runs[0].get("kappa_p_per_s")] or list(range(arr["npp_map"].shape[0]))
        keep = [k for k in keep if k < arr["npp_map"].shape[0]]
        paths = npp_maps(arr["npp_map"][keep], arr["sigma2"][keep], arr["lat"], arr["lon"], out_dir,
                         formats=formats)
        return [Figure("npp_maps", "Model NPP for each sigma2 (Figure 1)",
                       "Column-integrated model NPP (mg C m-2 d-1) of each sigma2 run of the sweep, one colour scale; "
                       "land from the model's mask.", paths)]
    for inv in _primary(folder):
        s = read_state(inv.state_path, ("npp_map_mg_c_m2_d", "npp_model_map_mg_c_m2_d", "lat", "lon"))
        key = "npp_map_mg_c_m2_d" if "npp_map_mg_c_m2_d" in s else "npp_model_map_mg_c_m2_d"
        if key in s:
            sigma2 = (inv.result.get("config", {}).get("model", {}) or {}).get("sigma2", 0.0)
            paths = npp_maps(s[key][None], [sigma2], s["lat"], s["lon"], out_dir, formats=formats)
            return [Figure("npp_maps", "Model NPP", "Column-integrated model NPP (mg C m-2 d-1) of the inversion.",
                           paths)]
    raise NotApplicable("no NPP maps saved (a sigma2 sweep's sigma2_sweep.h5 or an inversion's state file)")


def npp_sigma2_figure(folder, out_dir, formats):
    from .sweep import npp_vs_sigma2
    runs = (folder.sweep or {}).get("runs") or []
    main = [r for r in runs if r.get("kappa_l_per_s") == runs[0].get("kappa_l_per_s")
            and r.get("kappa_p_per_s") == runs[0].get("kappa_p_per_s")] if runs else []
    if len(main) < 2:
        raise NotApplicable("needs a sigma2 sweep with two or more sigma2 values (summary.json)")
    paths = npp_vs_sigma2([r["sigma2"] for r in main], [r["npp_pg_c_per_yr"] for r in main],
                          [r["npp_pop_pg_c_per_yr"] for r in main], folder.sweep.get("fit"), out_dir, formats=formats)
    return [Figure("npp_sigma2", "NPP against sigma2 (Figure S3)",
                   "Model NPP and the NPP routed through POP (Pg C yr-1) of each sweep run, with the fitted "
                   "NPP = 1/(a + b sigma2).", paths)]


def obs_vs_model_figure(folder, out_dir, formats):
    from .fit import obs_vs_model
    invs = _main_runs(folder) or [inv for inv in folder.inversions]
    invs = [inv for inv in invs if inv.state_path and inv.result][:6]
    panels = []
    for inv in invs:
        tracers = _observed(inv)
        s = read_state(inv.state_path, set(tracers) | {f"{t}_observed" for t in tracers} | {"box_volume"})
        if "box_volume" not in s:
            continue
        for t in tracers:
            panels.append({"label": t, "title": f"{t}: {inv.label or _product(inv)}" if len(invs) > 1 else t,
                           "model": s[t], "obs": s[f"{t}_observed"], "volume": s["box_volume"], "units": UNITS,
                           "r2": _r2(inv.result, t)})
    if not panels:
        raise NotApplicable("no inversion saved observed and modelled fields (<tracer>_observed in its state file)")
    paths = obs_vs_model(panels, out_dir, formats=formats)
    return [Figure("obs_vs_model", "Observed against modelled tracers (Figures S2/S4)",
                   "Volume-weighted 2-D histograms of the observed boxes; dashed: 1:1; R2 as the run computed it.",
                   paths)]


MAP_KEYS_FIG2 = [("npp_satellite_map_mg_c_m2_d", "satellite NPP"), ("toc_export_map_mg_c_m2_d", "TOC export")]
MAP_KEYS_FIG3 = [("docl_export_map_mg_c_m2_d", "DOC$_l$ export"), ("docs_export_map_mg_c_m2_d", "DOC$_s$ export"),
                 ("docl_production_map_mg_c_m2_d", "labile production")]


def _product_maps(folder, keys):
    per, lat, lon = {}, None, None
    invs = [inv for inv in folder.inversions if inv.state_path and inv.result]
    if _main_runs(folder):
        invs = []
    for inv in invs:
        s = read_state(inv.state_path, {k for k, _ in keys} | {"lat", "lon"})
        if all(k in s for k, _ in keys):
            per[_product(inv)] = s
            lat, lon = s["lat"], s["lon"]
    return per, lat, lon


def product_maps_figure(folder, out_dir, formats):
    from .maps import product_maps
    out = []
    for name, keys, title, caption in (
            ("export_maps", MAP_KEYS_FIG2, "Satellite NPP and TOC export per NPP product (Figure 2)",
             "Annual-mean satellite NPP forcing the run and the total organic carbon export below the euphotic "
             "zone (POC + DOC_s + DOC_l), mg C m-2 d-1; each column one colour scale."),
            ("doc_maps", MAP_KEYS_FIG3, "DOC export and labile production per NPP product (Figure 3)",
             "DOC_l and DOC_s export below the euphotic zone and the labile production (satellite NPP - model "
             "NPP), mg C m-2 d-1; each column one colour scale.")):
        per, lat, lon = _product_maps(folder, keys)
        if per:
            out.append(Figure(name, title, caption, product_maps(per, keys, lat, lon, out_dir, name, title,
                                                                 formats=formats)))
    if not out:
        raise NotApplicable("no joint inversion saved the export maps (joint_state*.h5)")
    return out


def taylor_figure(folder, out_dir, formats):
    from .taylor import taylor_diagram
    points, henson, esm = [], {}, {}
    for inv in folder.inversions:
        traps = ((inv.result or {}).get("diagnostics") or {}).get("traps") or {}
        t = traps.get("taylor")
        if t:
            points.append({"label": f"inverse, {_product(inv)}", "group": "inverse model", **t})
            henson.update({k: v for k, v in (traps.get("henson") or {}).items() if v})
            esm.update({k: v for k, v in (traps.get("esm") or {}).items() if v})
    if not points:
        raise NotApplicable("no inversion compared with trap stations (the synthetic worlds have none: give a "
                            "trap table in [world] inputs, or use the ocim2-mask world with the Mouw et al. data)")
    points += [{"label": f"Henson, {k}", "group": "Henson (2011)", **v} for k, v in sorted(henson.items())]
    points += [{"label": k, "group": "CMIP6", **v} for k, v in sorted(esm.items())]
    paths = taylor_diagram(points, out_dir, formats=formats)
    return [Figure("taylor", "POC flux at 100 m against the trap stations (Figure 4)",
                   "Taylor diagram: standard deviation normalised by the stations', correlation as the angle; "
                   "each inverse run, the Henson (2011) export of each NPP product and each Earth-system model "
                   "given.", paths)]


def sections_figure(folder, out_dir, formats):
    from .sections import tracer_sections
    out = []
    for inv in _primary(folder)[:1]:
        tracers = _observed(inv)
        s = read_state(inv.state_path)
        if "basin" not in s or "box_volume" not in s:
            continue
        names = _basin_names(inv.state_path)
        for t in tracers:
            name = f"sections_{t}"
            paths = tracer_sections(t, UNITS, s[t], s[f"{t}_observed"], s["box_volume"], s["basin"], names,
                                    s["lat"], s["depth"], out_dir, name, formats=formats,
                                    kind="oxygen" if t == "O2" else "tracer")
            out.append(Figure(name, f"{t}: zonal means by basin",
                              f"Volume-weighted zonal means of model and observed {t} and their difference over the "
                              f"observed boxes ({inv.label or _product(inv)}).", paths))
    if not out:
        raise NotApplicable("no inversion saved observed fields with basins and volumes")
    return out


def age_section_figure(folder, out_dir, formats):
    from .sections import tracer_sections
    if not folder.age_path:
        raise NotApplicable("no ideal age saved (the main job, `bcp-hpc run`, writes ideal_age.h5)")
    s = read_state(folder.age_path)
    paths = tracer_sections("ideal age", "yr", s["ideal_age"], None, s["box_volume"], s["basin"],
                            _basin_names(folder.age_path), s["lat"], s["depth"], out_dir, "age_section",
                            formats=formats, kind="age")
    return [Figure("age_section", "Ideal age of the circulation",
                   "Volume-weighted zonal-mean ideal age (years since last contact with the surface) by basin.", paths)]


def posterior_figures(folder, out_dir, formats):
    from .posterior import posterior_figure
    out = []
    for inv in _primary(folder):
        r = inv.result
        post = r.get("posterior") or {}
        names = post.get("names") or list(r.get("parameters", {}))
        name = "posterior" + (f"_{inv.label}" if inv.label else "")
        paths = posterior_figure(r["parameters"], post.get("correlation"), names,
                                 (r.get("eigen") or {}).get("eigenvalues", []), r.get("truth"), out_dir, name,
                                 title=inv.title, formats=formats)
        out.append(Figure(name, f"Posterior: {inv.title}",
                          "Parameters with their 1-sigma intervals" + (" relative to the twin truth" if r.get("truth")
                                                                       else "") + "; posterior correlation of the "
                          "transformed parameters; eigenvalues of the Hessian scaled to unit diagonal.", paths))
    if not out:
        raise NotApplicable("no inversion result")
    return out


def convergence_figure(folder, out_dir, formats):
    from .convergence import convergence
    logs = {inv.label or "run": inv.iterations for inv in folder.inversions if inv.iterations}
    if not logs:
        raise NotApplicable("no iteration log (iterations_*.jsonl)")
    paths = convergence(logs, out_dir, formats=formats)
    return [Figure("convergence", "Convergence of the optimiser",
                   "Objective, gradient norm and trust radius of each TAO iteration, from the JSON-lines logs.", paths)]


def scaling_figure(folder, out_dir, formats):
    from .scaling import scaling_ladder
    rows = (folder.scaling or {}).get("measurements")
    if not rows:
        raise NotApplicable("no scaling measurements (`bcp-hpc bench scaling --json FILE`)")
    return [Figure("scaling", "Scaling ladder", "Factor + solve time and the largest rank's peak memory against "
                   "unknowns; strong scaling.", scaling_ladder(rows, out_dir, formats=formats))]


def _basin_names(path: str) -> dict:
    import h5py
    with h5py.File(path, "r") as h:
        d = h["basin"]
        vals = [int(v) for v in d.attrs.get("flag_values", [])]
        meanings = d.attrs.get("flag_meanings", "")
        meanings = (meanings.decode() if isinstance(meanings, bytes) else str(meanings)).split()
    return {v: m.capitalize() for v, m in zip(vals, meanings)}


#: figure name (for ``bcp-hpc plot``) -> builder
BUILDERS = {
    "npp-maps": npp_maps_figure, "npp-sigma2": npp_sigma2_figure, "obs-vs-model": obs_vs_model_figure,
    "product-maps": product_maps_figure, "taylor": taylor_figure, "sections": sections_figure,
    "age-section": age_section_figure, "posterior": posterior_figures, "convergence": convergence_figure,
    "scaling": scaling_figure,
}
assert set(BUILDERS) == set(FIGURE_NAMES)


def draw(folder: RunFolder, names, out_dir: str, formats=("png", "svg")):
    """The figures ``names`` (all by default) of ``folder`` into ``out_dir``: (figures, {name: reason not
    drawn})."""
    figures, skipped = [], {}
    for name in names or BUILDERS:
        builder = BUILDERS[name]
        try:
            figures += builder(folder, out_dir, formats)
        except NotApplicable as exc:
            skipped[name] = str(exc)
        except (OSError, KeyError, ValueError, IndexError) as exc:
            # a damaged file: the report names it instead of stopping
            skipped[name] = f"could not be drawn ({type(exc).__name__}: {exc})"
    return figures, skipped
