"""``bcp-hpc report RUN_DIR``: one self-contained ``report.html`` of a run folder.

The page carries its PNG figures inline (it opens offline, mailed on its own: no scripts, fonts or
tiles from elsewhere) and links the PNG/SVG files beside it; the tables (parameters, allocation,
exports, fit), the model variant, the resolved configuration, the solver paths, timings and software
versions; and a list of whatever the folder lacks or could not be read."""
from __future__ import annotations

import base64
import html
import json
import os
import time

from ..io.atomic import write_text_atomic
from .figures.catalog import draw
from .rundir import RunFolder, read_run

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:0 24px 48px;
color:#1d2329;line-height:1.45}
h1{font-size:1.6em;margin:24px 0 4px}h2{font-size:1.25em;margin-top:34px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}h3{font-size:1.05em;margin-top:22px}
.meta{color:#57606a}table{border-collapse:collapse;margin:8px 0 16px;font-size:.86em}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right}th{background:#f3f5f7}td:first-child,th:first-child{text-align:left}
figure{margin:12px 0 28px}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.88em;color:#57606a}.bad{color:#b42318;font-weight:600}.ok{color:#1a7f37;font-weight:600}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:.8em;max-height:420px}
.problems{background:#fff4e5;border:1px solid #f0b46a;padding:8px 14px}nav{display:flex;flex-wrap:wrap;gap:4px 14px}
"""


def _esc(v) -> str:
    return html.escape(str(v))


def _num(v, digits=4) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if v != v:                                  # NaN
            return "—"
        return f"{v:.{digits}g}"
    return _esc(v)


def _table(header: list, rows: list) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else _num(c)}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


class _Raw(str):
    """HTML that a table cell holds as is."""


def _converged(v) -> _Raw:
    return _Raw('<span class="ok">yes</span>' if v else '<span class="bad">NO</span>')


def _figure_html(fig, rel_dir: str, out_dir: str) -> str:
    png = fig.paths[0]
    with open(png, "rb") as fh:
        data = base64.b64encode(fh.read()).decode()
    links = " · ".join(f'<a href="{_esc(os.path.relpath(p, out_dir))}">{os.path.splitext(p)[1][1:].upper()}</a>'
                       for p in fig.paths)
    return (f'<figure id="{_esc(fig.name)}"><h3>{_esc(fig.title)}</h3>'
            f'<img src="data:image/png;base64,{data}" alt="{_esc(fig.title)}">'
            f"<figcaption>{_esc(fig.caption)} Files: {links}.</figcaption></figure>")


def _inversion_tables(folder: RunFolder) -> str:
    invs = [i for i in folder.inversions if i.result]
    if not invs:
        return ""
    out = ["<h2 id='convergence-table'>Inversions</h2>",
           _table(["run", "NPP product", "converged", "TAO reason", "iterations", "objective"],
                  [[i.label or i.result.get("cycle", ""), i.result.get("npp_product"), _converged(i.result.get("converged")),
                    i.result.get("tao_reason_name"), i.result.get("iterations"), i.result.get("objective")]
                   for i in invs])]
    shown = invs if len(invs) <= 3 else invs[:1]
    for inv in shown:
        r = inv.result
        truth = r.get("truth") or {}
        rows = []
        for n, p in r.get("parameters", {}).items():
            flags = "; ".join(f for f, on in (("at a bound", p.get("at_bound")),
                                               ("unconstrained", p.get("sigma") is None)) if on)
            rows.append([n, p["value"], p.get("sigma") if p.get("sigma") is not None else _Raw("unconstrained"),
                         p.get("lower_1sigma"), p.get("upper_1sigma"), p.get("units"), truth.get(n),
                         (r.get("z_from_truth") or {}).get(n), flags])
        header = ["parameter", "value", "±1σ", "lower 1σ", "upper 1σ", "units"]
        if truth:
            header += ["truth", "deviation (σ)"]
        else:
            rows = [row[:6] + row[8:] for row in rows]
        out.append(f"<h3>Parameters: {_esc(inv.title)}</h3>" + _table(header + ["flags"], rows))
        diag = r.get("diagnostics") or {}
        fit = diag.get("fit") or {}
        if fit:
            out.append(_table(["tracer", "R²", "RMSE (mmol m⁻³)", "observed boxes"],
                              [[t, s.get("r2"), s.get("rmse_mmol_m3"), s.get("n_obs")] for t, s in fit.items()]))
        totals = [(k, v) for k, v in diag.items() if k.endswith("_pg_c_per_yr") and isinstance(v, (int, float))]
        if totals:
            out.append(_table(["total", "Pg C yr⁻¹"], [[k[:-len("_pg_c_per_yr")].replace("_", " "), v]
                                                         for k, v in totals]))
    return "".join(out)


def _sweep_tables(folder: RunFolder) -> str:
    runs = (folder.sweep or {}).get("runs") or []
    if not runs:
        return ""
    names = list(runs[0].get("parameters", {}))
    s1 = _table(["sigma2", "κ_l (s⁻¹)", "κ_p (s⁻¹)", "converged", "iterations"]
                + sum(([n, "±1σ"] for n in names), []),
                [[r["sigma2"], r.get("kappa_l_per_s"), r.get("kappa_p_per_s"), _converged(r.get("converged", True)),
                  r.get("iterations")]
                 + sum(([r["parameters"][n]["value"], r["parameters"][n]["sigma"]
                         if r["parameters"][n]["sigma"] is not None else _Raw("unconstrained")] for n in names), [])
                 for r in runs])
    s2 = _table(["sigma2", "κ_l (s⁻¹)", "NPP", "NPP POP", "NPP DOP_s", "NPP DOP_l", "POP export", "R² DIP"],
                [[r["sigma2"], r.get("kappa_l_per_s"), r["npp_pg_c_per_yr"], r["npp_pop_pg_c_per_yr"],
                  r["npp_dops_pg_c_per_yr"], r["npp_dopl_pg_c_per_yr"], r["pop_export_pg_c_per_yr"], r["r2_dip"]]
                 for r in runs])
    fit = folder.sweep.get("fit") or {}
    line = (f"<p>NPP(σ₂) = 1/({_num(fit.get('a'))} + ({_num(fit.get('b'))}) σ₂), R² {_num(fit.get('r2'))}</p>"
            if fit else "")
    return ("<h2 id='sweep'>σ₂ sweep</h2><h3>Parameters (Table S1)</h3>" + s1
            + "<h3>Allocation of NPP, Pg C yr⁻¹ (Table S2)</h3>" + s2 + line)


def _products_tables(folder: RunFolder) -> str:
    p = folder.products
    if not p:
        return ""
    prods = p.get("products", [])
    keys = list(p.get("mean_std", {}))
    rows = [[k[:-len("_pg_c_per_yr")].replace("_", " ")] + [p["runs"][q].get(k) for q in prods]
            + [p["mean_std"][k]["mean"], p["mean_std"][k]["std"]] for k in keys]
    out = ["<h2 id='products'>NPP products</h2><h3>Exports and production, Pg C yr⁻¹ (Table S3 analogue)</h3>",
           _table(["quantity"] + [q.upper() for q in prods] + ["mean", "std"], rows),
           _table(["product", "converged", "iterations", "objective"],
                  [[q.upper(), _converged(p["runs"][q].get("converged")), p["runs"][q].get("iterations"),
                    p["runs"][q].get("objective")] for q in prods])]
    names = list(p["runs"][prods[0]].get("parameters", {})) if prods else []
    if names:
        out.append("<h3>Parameters per product</h3>" + _table(
            ["parameter"] + [q.upper() for q in prods] + ["units"],
            [[n] + [p["runs"][q]["parameters"][n]["value"] for q in prods]
             + [p["runs"][prods[0]]["parameters"][n]["units"]] for n in names]))
    cross = p.get("cross_experiment")
    if cross:
        out.append(f"<p>Cross experiment: {_esc(cross['forcing'])} forcing with the {_esc(cross['parameters_from'])} "
                   f"optimum gives a DOC_l export of {_num(cross['docl_export_pg_c_per_yr'])} Pg C yr⁻¹ "
                   f"({_num(cross['docl_export_optimal_pg_c_per_yr'])} at its own optimum).</p>")
    return "".join(out)


def _about(folder: RunFolder) -> str:
    out = ["<h2 id='about'>How the run was made</h2>"]
    info = folder.run_info or {}
    if info:
        rows = [["command", _Raw(f"<code>{_esc(info.get('command', ''))}</code>")], ["ranks", info.get("ranks")],
                ["host", info.get("host")], ["started (UTC)", info.get("started_utc")],
                ["wall time (s)", info.get("wall_time_s")]]
        out.append(_table(["", ""], rows))
        if info.get("solver_paths"):
            out.append("<h3>Solver paths</h3>" + _table(["steady state", "linear solver"],
                                                        [[k, v] for k, v in info["solver_paths"].items()]))
        if info.get("software"):
            out.append("<h3>Software</h3>" + _table(["package", "version"], [[k, v] for k, v in info["software"].items()]))
    timing = [[i.label or "run", len(i.iterations), i.iterations[-1].get("elapsed_s"),
               _gib(max((it.get("peak_rss_bytes_largest_rank") or 0) for it in i.iterations))]
              for i in folder.inversions if i.iterations]
    if timing:
        out.append("<h3>Timings</h3>" + _table(["inversion", "iterations logged", "elapsed (s)",
                                                "peak memory of the largest rank (GiB)"], timing))
    variants = {i.label or "run": i.result.get("variant") for i in folder.inversions if i.result}
    variants = variants or ({"sweep": folder.sweep.get("model_variant")} if folder.sweep else {})
    if folder.products and not variants:
        variants = {"products": folder.products.get("variant")}
    first = next((v for v in variants.values() if v), None)
    if first:
        out.append("<h3>Model variant</h3>" + _table(["switch", "value"],
                                                     [[k, _Raw(_esc(json.dumps(v)))] for k, v in first.items()]))
    if folder.config:
        out.append("<h3>Resolved configuration</h3><pre>" + _esc(json.dumps(folder.config, indent=2)) + "</pre>")
    return "".join(out)


def _gib(nbytes):
    """Bytes as GiB with two decimals; None (logs written before memory was recorded) for 0."""
    return round(nbytes / 2**30, 2) if nbytes else None


def write_report(run_dir: str, out_dir: str | None = None, formats=("png", "svg")) -> str:
    """``report.html`` (and ``figures/``) of the run folder ``run_dir`` in ``out_dir`` (default: the run
    folder); returns the report's path."""
    folder = read_run(run_dir)
    out_dir = os.path.abspath(out_dir or run_dir)
    fig_dir = os.path.join(out_dir, "figures")
    figures, skipped = draw(folder, None, fig_dir, formats)
    title = f"bcp-hpc report: {folder.kind}, {os.path.basename(folder.path)}"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body>",
             f"<h1>{_esc(title)}</h1><p class='meta'>{_esc(folder.path)} · report written "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}</p>"]
    unconverged = [i.label or "run" for i in folder.inversions if i.result and not i.result.get("converged")]
    if unconverged:
        parts.append(f"<p class='bad'>Not converged: {_esc(', '.join(unconverged))}. Their results are the last "
                     "iterate, not an optimum.</p>")
    if folder.problems:
        parts.append("<div class='problems'><b>Missing or unreadable in this folder</b><ul>"
                     + "".join(f"<li><code>{_esc(n)}</code>: {_esc(w)}</li>" for n, w in folder.problems)
                     + "</ul></div>")
    tables = [(k, t) for k, t, on in (("sweep", "σ₂ sweep tables", folder.sweep), ("products", "product tables",
                                                                                    folder.products),
                                       ("convergence-table", "inversion tables", folder.inversions)) if on]
    parts.append("<nav>" + "".join(f"<a href='#{_esc(f.name)}'>{_esc(f.name)}</a>" for f in figures)
                 + "".join(f"<a href='#{k}'>{t}</a>" for k, t in tables) + "<a href='#about'>how it was run</a></nav>")
    if figures:
        parts.append("<h2 id='figures'>Figures</h2>" + "".join(_figure_html(f, fig_dir, out_dir) for f in figures))
    if skipped:
        parts.append("<h3>Figures not drawn</h3><ul>" + "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>"
                                                              for k, v in skipped.items()) + "</ul>")
    parts += [_sweep_tables(folder), _products_tables(folder), _inversion_tables(folder), _about(folder),
              "</body></html>"]
    path = os.path.join(out_dir, "report.html")
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path
