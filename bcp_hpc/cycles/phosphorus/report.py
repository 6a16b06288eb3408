"""The P cycle's tables and printout: Tables S1/S2 of the sweep, its HDF5 file and summary, the lines of a
single inversion's summary."""
from __future__ import annotations

import os

import h5py
import numpy as np

from ...io.atomic import atomic_path
from ...io.netcdf_h5 import DimensionedWriter
from ...log import mpi_rank, rprint
from ...io.results import write_csv, write_json

SWEEP_TOTALS = ("npp_pg_c_per_yr", "npp_pop_pg_c_per_yr", "npp_dops_pg_c_per_yr", "npp_dopl_pg_c_per_yr",
                "pop_export_pg_c_per_yr")


def write_sweep(out_dir, runs, maps, fit, lat, lon, summary):
    """Table S1 (parameters) and S2 (allocation) as CSV, summary.json, sigma2_sweep.h5 (named dimensions)."""
    names = list(runs[0]["parameters"])
    write_csv(os.path.join(out_dir, "table_S1_parameters.csv"),
              ["run", "sigma2", "kappa_l_per_s", "kappa_p_per_s", "converged", "tao_reason"]
              + sum(([n, f"{n}_sigma", f"{n}_units", f"{n}_flag"] for n in names), []),
              [[r["tag"], r["sigma2"], r["kappa_l_per_s"], r["kappa_p_per_s"], r.get("converged", True),
                r.get("tao_reason", "")]
               + sum(([r["parameters"][n]["value"], _sigma(r["parameters"][n]), r["parameters"][n]["units"],
                       _flag(r["parameters"][n])] for n in names), []) for r in runs])
    write_csv(os.path.join(out_dir, "table_S2_allocation.csv"),
              ["run", "sigma2", *SWEEP_TOTALS, "r2_dip", "iterations"],
              [[r["tag"], r["sigma2"], *(r[k] for k in SWEEP_TOTALS), r["r2_dip"], r["iterations"]] for r in runs])
    write_json(os.path.join(out_dir, "summary.json"), summary)
    with atomic_path(os.path.join(out_dir, "sigma2_sweep.h5"), ".h5") as tmp:
        with h5py.File(tmp, "w") as h:
            w = DimensionedWriter(h)
            w.dimension("run", np.arange(len(runs)))
            w.dimension("lat", lat, "degrees_north")
            w.dimension("lon", lon, "degrees_east")
            w.variable("sigma2", [r["sigma2"] for r in runs], ("run",), "1")
            for k in SWEEP_TOTALS:
                w.variable(k, [r[k] for r in runs], ("run",), "Pg C yr-1")
            w.variable("r2_dip", [r["r2_dip"] for r in runs], ("run",), "1")
            w.variable("kappa_l", [r["kappa_l_per_s"] for r in runs], ("run",), "s-1")
            w.variable("kappa_p", [r["kappa_p_per_s"] for r in runs], ("run",), "s-1")
            for n in names:
                units = runs[0]["parameters"][n]["units"]
                w.variable(n, [r["parameters"][n]["value"] for r in runs], ("run",), units)
                w.variable(n + "_sigma", [np.nan if r["parameters"][n]["sigma"] is None else r["parameters"][n]["sigma"]
                                          for r in runs], ("run",), units,
                           comment="NaN: unconstrained by the data")
            m = np.array(maps)
            m[m < 0] = np.nan
            w.variable("npp_map", m, ("run", "lat", "lon"), "mg C m-2 d-1")
            h.attrs["fit_a"] = fit["a"]
            h.attrs["fit_b"] = fit["b"]
            h.attrs["fit_r2"] = fit["r2"]
            h.attrs["fit_form"] = "NPP = 1 / (a + b sigma2), NPP in Pg C yr-1"


def sweep_outputs(result, out_dir: str, json_path: str | None = None):
    """The sweep's files (rank 0) and printout (the experiment's report hook)."""
    if mpi_rank() == 0:
        write_sweep(out_dir, result["runs"], result["maps"], result["fit"], result["lat"], result["lon"],
                    result["summary"])
        if json_path:
            write_json(json_path, {"runs": result["summary"]["runs"], "fit": result["fit"]})
    print_sweep(result)
    rprint(f"\nresults: {out_dir}/sigma2_sweep.h5, table_S1_parameters.csv, table_S2_allocation.csv, summary.json")


def _sigma(p):
    return "unconstrained" if p["sigma"] is None else p["sigma"]


def _flag(p):
    """'' or what a reader of Table S1 must know: at a bound of its table, unconstrained by the data."""
    return "; ".join(f for f, on in (("at a bound", p.get("at_bound")), ("unconstrained", p["sigma"] is None)) if on)


def print_sweep(result):
    runs = result["runs"]
    truth = result["observations"].get("truth")
    if truth:
        r0 = runs[0]
        rprint("\nTwin experiment at sigma2 = 0 (observations from known parameters + noise):")
        rprint(f"  {'parameter':10s} {'true':>12s} {'recovered':>12s} {'+-1 sigma':>12s} {'|dev|/sigma':>11s}")
        for n, v in r0["parameters"].items():
            t = truth.get(n)
            if v["sigma"] is None:
                rprint(f"  {n:10s} {t:12.4g} {v['value']:12.4g} {'unconstrained':>12s}")
                continue
            dev = abs(v["value"] - t) / v["sigma"] if t is not None and v["sigma"] > 0 else float("nan")
            rprint(f"  {n:10s} {t:12.4g} {v['value']:12.4g} {v['sigma']:12.3g} {dev:11.2f}")
    rprint("\nsigma2 sweep (Table S2 analogue):")
    rprint(f"  {'run':18s} {'NPP':>8s} {'POP':>8s} {'DOPs':>8s} {'DOPl':>8s} {'export':>8s} {'R2 DIP':>8s} {'its':>4s}"
           "   (Pg C/yr)")
    for r in runs:
        rprint(f"  {r['tag']:18s} {r['npp_pg_c_per_yr']:8.2f} {r['npp_pop_pg_c_per_yr']:8.2f} "
               f"{r['npp_dops_pg_c_per_yr']:8.2f} {r['npp_dopl_pg_c_per_yr']:8.2f} {r['pop_export_pg_c_per_yr']:8.2f} "
               f"{r['r2_dip']:8.4f} {r['iterations']:4d}" + ("" if r.get("converged", True) else "  not converged"))
    f = result["fit"]
    rprint(f"  NPP(sigma2) = 1/({f['a']:.4f} + ({f['b']:.4f}) sigma2), R2 = {f['r2']:.4f}")


def summary(payload) -> list:
    """The P cycle's lines of a single inversion's summary."""
    d = payload["diagnostics"]
    return [f"model NPP {d['npp_pg_c_per_yr']:.2f} Pg C/yr (POP {d['npp_pop_pg_c_per_yr']:.2f}, DOP_s "
            f"{d['npp_dops_pg_c_per_yr']:.2f}, DOP_l {d['npp_dopl_pg_c_per_yr']:.2f}); POP export "
            f"{d['pop_export_pg_c_per_yr']:.2f} Pg C/yr; R2(DIP) {d['r2_dip']:.4f}"]
