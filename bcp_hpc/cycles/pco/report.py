"""The joint cycle's printout: NPP, exports, POC flux at 100 m, traps, fit per tracer; products table."""
from __future__ import annotations

import os

from ...log import mpi_rank, rprint
from ...io.results import write_json


def summary(payload) -> list:
    d = payload["diagnostics"]
    lines = [
        f"model NPP {d['npp_model_pg_c_per_yr']:.2f} of satellite {d['npp_satellite_pg_c_per_yr']:.2f} Pg C/yr; "
        f"DOC_l production {d['docl_production_pg_c_per_yr']:.2f}",
        f"export at the euphotic base (Pg C/yr): POC {d['poc_export_pg_c_per_yr']:.3f}, "
        f"DOC_s {d['docs_export_pg_c_per_yr']:.3f} (adjoint {d.get('docs_export_adjoint_pg_c_per_yr', float('nan')):.3f}), "
        f"DOC_l {d['docl_export_pg_c_per_yr']:.3f} (adjoint {d.get('docl_export_adjoint_pg_c_per_yr', float('nan')):.3f}), "
        f"TOC {d['toc_export_pg_c_per_yr']:.3f}; north of 30 S: TOC {d['toc_export_north_of_30s_pg_c_per_yr']:.3f}",
        f"POC flux at 100 m {d['poc_flux_100m_pg_c_per_yr']:.3f} Pg C/yr; Henson (2011) with the NPP products: "
        + ", ".join(f"{k} {v:.2f}" for k, v in d.get("henson_f100_pg_c_per_yr", {}).items())]
    if "traps" in d and "taylor" in d["traps"]:
        t = d["traps"]["taylor"]
        lines.append(f"trap stations {', '.join(d['traps']['used'])}: r {t['r']:.2f}, centred RMSD {t['crmsd']:.1f}, "
                     f"std model {t['std_model']:.1f} / obs {t['std_obs']:.1f} mg C m-2 d-1")
    for name, st in d.get("fit", {}).items():
        lines.append(f"  fit {name:4s}: R2 {st['r2']:.4f}, RMSE {st['rmse_mmol_m3']:.4g} mmol m-3 ({st['n_obs']} boxes)")
    return lines


def products_outputs(payload, out_dir: str, json_path: str | None = None):
    """``joint_products.json`` (rank 0) and the mean +- std printout (the experiment's report hook)."""
    if mpi_rank() == 0:
        write_json(os.path.join(out_dir, "joint_products.json"), payload)
        if json_path:
            write_json(json_path, payload)
    print_products(payload)
    rprint(f"results: {out_dir}/joint_products.json")


def print_products(payload):
    for k in ("toc_export_pg_c_per_yr", "docl_export_pg_c_per_yr", "docl_production_pg_c_per_yr",
              "npp_satellite_pg_c_per_yr"):
        st = payload["mean_std"][k]
        rprint(f"  {k}: {st['mean']:.3f} +- {st['std']:.3f}")
    for prod, r in payload["runs"].items():
        cred = r.get("truth_credibility") or {}
        if cred.get("likelihood_ratio") is not None:
            rprint(f"  {prod}: the twin's truth lies {'inside' if cred['within_likelihood_region'] else 'outside'} "
                   f"this product's 95 % likelihood region (2 (f(truth) - f) / s2 = {cred['likelihood_ratio']:.1f}, "
                   f"bound {cred['quantile']:.1f} for {cred['parameters']} parameters)")
