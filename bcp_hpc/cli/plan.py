"""``bcp-hpc plan``: predicted memory, ranks and time for grids beyond this machine.

Model (assumptions, documented in the README):

* unknowns ``N = wet boxes x tracers``; wet boxes scale from OCIM2's 200,160 (2 deg, 24 layers)
  with the number of columns (x4 per halving of the spacing) and layers;
* direct in-core MUMPS: total factor memory ``M = c_m N^q`` and one-rank factor+solve time
  ``t1 = c_t N^p``, fitted to ``bcp-hpc bench scaling`` rows (``--csv``; ranks = 1, solver direct) or,
  without a CSV, the package defaults measured on the 2-core development machine;
* strong scaling: each doubling of ranks keeps a fraction ``e`` of ideal speedup (measured 2-rank
  efficiency; default 0.6), ``t(k) = t1 / (k e^log2(k))``;
* ranks needed: the smallest power of two with ``1.3 M / k`` (30 % imbalance and workspace)
  below 80 % of the memory per rank (``--mem-per-node / --ranks-per-node``);
* out of core (``ooc``): memory / 6 (measured), same time; structured path: memory / 2;
* iterative (two-level GMRES): one-rank time ``c_i N^p_i`` fitted to the iterative rows (default:
  measured here, p_i = 1.24), efficiency per doubling of the iterative rows (default 0.86);
* memory of the largest rank = a *shared* part that every rank holds whatever the rank count (the
  runtime, the grid's index arrays, the forcing fields) plus a *divided* part over the ranks:
  ``m(k) = s0 + s1 N + d N / k`` for the iterative path, ``s0 + s1 N + 1.3 M / k`` for the factor
  paths; ``s0, s1, d`` are fitted to the rows measured on 1, 2 and 4 ranks (``memory_split`` of
  ``bcp-hpc bench scaling``), else the package defaults measured here.  A grid whose shared part
  alone exceeds 80 % of a rank's memory does not fit at any rank count (``ranks`` = None).
Rows for the P model (4 tracers) and the joint P-C-O model (11 tracers): the joint model's unknowns
are taken to fill like the P model's (same law in N); its block-triangular solve factors smaller
blocks, so this overestimates its factor memory.

Joint evaluations (``--joint FILE``, the JSON of ``bcp-hpc bench joint``, repeatable, and the
``joint`` rows of the ``--csv`` ladder, ``bcp-hpc bench scaling --solver joint``): one objective
evaluation with gradient and Hessian of the joint model is predicted from a measured one, the
*anchor* (the largest measured grid): time ``t = t_a (N / N_a)^p`` at the anchor's rank count, moved
to other rank counts with the efficiency per doubling (of the ladder's joint rows when it has 1- and
2-rank rows, else the direct path's); the ranks' summed peak memory
``M = M_a (N / N_a)^q``, the largest rank's share ``M / k`` times the anchor's imbalance, or, when the
ladder has joint rows on two rank counts, its shared and divided parts at the largest size,
``(S + D / k) (N / N_s)^q`` (fitted on the rows of 2 and more ranks where there are two such counts).  ``p`` and
``q`` are fitted to the runs when they cover two or more grid sizes at one rank count, else they are
the direct path's time and factor-memory exponents.  With three or more sizes the law is also checked
out of sample: fitted without the largest size, it predicts that size, and the errors are printed.
"""
from __future__ import annotations

import math
import os

from ..errors import InputError
from ..log import rprint
from ..solvers.choice import EXPONENT, FACTOR_MEMORY_FRACTION, REF_MB, REF_UNKNOWNS

OCIM2_WET = 200_160
#: one-rank factor+solve of the direct path on this machine: 7.6 s at 165,932 unknowns, ~92 s at 800,640
DEFAULT_TIME = (7.6 / REF_UNKNOWNS ** 1.58, 1.58)
DEFAULT_MEMORY = (REF_MB * 2**20 / REF_UNKNOWNS ** EXPONENT, EXPONENT)
DEFAULT_EFFICIENCY = 0.6
#: iterative path: 6.02 s at 165,932 unknowns, time ~ N^1.24, efficiency 0.86 from 1 to 2 ranks (embedded,
#: OCIM2 size, 2 and 1 deg x 48 layers; `bcp-hpc bench scaling --solver iterative --max-ranks 2`)
DEFAULT_ITERATIVE_TIME = (6.02 / REF_UNKNOWNS ** 1.24, 1.24)
DEFAULT_ITERATIVE_EFFICIENCY = 0.86
#: memory of the largest rank on the iterative path, m(k) = s0 + s1 N + d N / k (bytes), fitted to
#: `bcp-hpc bench scaling --rungs ocim2,2deg48,1deg48 --solver iterative` on 1, 2 and 4 ranks (800,640
#: to 5,761,108 unknowns; docs/benchmarks.md), on the rows of 2 and 4 ranks
DEFAULT_SHARED = (0.135 * 2**30, 58.0)
DEFAULT_DIVIDED_PER_UNKNOWN = 2190.0
GRIDS = [("2deg", 24), ("1deg", 24), ("1deg", 48), ("0.5deg", 24), ("0.5deg", 48)]
COLUMN_FACTOR = {"2deg": 1, "1deg": 4, "0.5deg": 16}


def memory_fit(split_rows):
    """``(shared (s0, s1), divided bytes per unknown)`` from :func:`bcp_hpc.bench.scaling.memory_split` rows
    of the whole run (None where the rows do not determine them)."""
    import numpy as np
    pts = [(m["unknowns"], m["shared_bytes"]) for m in split_rows if m["phase"] == "run" and m["solver"] != "joint"]
    shared = None
    if len({n for n, _ in pts}) >= 2:
        s1, s0 = np.polyfit([n for n, _ in pts], [v for _, v in pts], 1)
        shared = (max(float(s0), 0.0), max(float(s1), 0.0))
    elif pts:
        shared = (max(pts[0][1], 0.0), 0.0)
    per = [m["divided_bytes"] / m["unknowns"] for m in split_rows if m["phase"] == "run" and m["solver"] == "iterative"]
    return shared, (float(np.mean(per)) if per else None)


def _fits(csv_path):
    if not csv_path:
        return (DEFAULT_TIME, DEFAULT_MEMORY, DEFAULT_EFFICIENCY, "package defaults (2-core development machine)",
                DEFAULT_ITERATIVE_TIME, DEFAULT_ITERATIVE_EFFICIENCY, DEFAULT_SHARED, DEFAULT_DIVIDED_PER_UNKNOWN)
    if not os.path.exists(csv_path):
        raise InputError("scaling CSV not found (run `bcp-hpc bench scaling --csv FILE` first)", path=csv_path)
    from ..bench.scaling import fit_power, memory_split, read_rows, summarize
    measured = read_rows(csv_path)
    rows = [r for r in measured if r["status"] == "ok" and r["solver"] == "direct"]
    if not [r for r in measured if r["solver"] != "joint"]:
        # a ladder of the joint model only: the P model's paths keep the defaults
        return (DEFAULT_TIME, DEFAULT_MEMORY, DEFAULT_EFFICIENCY,
                f"package defaults (2-core development machine; {csv_path} has joint rows only)",
                DEFAULT_ITERATIVE_TIME, DEFAULT_ITERATIVE_EFFICIENCY, DEFAULT_SHARED, DEFAULT_DIVIDED_PER_UNKNOWN)
    one = {r["unknowns"]: r for r in rows if r["ranks"] == 1}
    xs = sorted(one)
    if len(xs) >= 2:
        t = fit_power(xs, [one[x]["factor_solve_s"] for x in xs])
        mem = [one[x]["mumps_mb_total"] * 2**20 if one[x]["mumps_mb_total"] else one[x]["peak_rss_bytes"] for x in xs]
        m = fit_power(xs, mem)
        effs = [e["parallel_efficiency"] for e in summarize(rows)["efficiency"]
                if e["ranks"] == 2 and e["parallel_efficiency"]]
        eff = max(min(sum(effs) / len(effs), 1.0), 0.3) if effs else DEFAULT_EFFICIENCY
        source = f"direct path fitted to {len(rows)} direct rows of {csv_path}"
    else:
        # a ladder without direct rows at two sizes (e.g. `--solver iterative` only): the direct and
        # out-of-core columns keep the package defaults, the iterative ones are fitted below
        t, m, eff = DEFAULT_TIME, DEFAULT_MEMORY, DEFAULT_EFFICIENCY
        source = (f"direct path: package defaults ({csv_path} has direct rows at 1 rank on {len(xs)} grid size"
                  f"{'' if len(xs) == 1 else 's'}, two are needed)")
    it_rows = [r for r in measured if r["status"] == "ok" and r["solver"] == "iterative"]
    it_one = {r["unknowns"]: r for r in it_rows if r["ranks"] == 1}
    it_t = DEFAULT_ITERATIVE_TIME
    if len(it_one) >= 2:
        xs_i = sorted(it_one)
        it_t = fit_power(xs_i, [it_one[x]["factor_solve_s"] for x in xs_i])
    it_effs = [e["parallel_efficiency"] for e in summarize(it_rows)["efficiency"]
               if e["ranks"] == 2 and e["parallel_efficiency"]]
    it_eff = max(min(sum(it_effs) / len(it_effs), 1.0), 0.3) if it_effs else DEFAULT_ITERATIVE_EFFICIENCY
    shared, divided = memory_fit(memory_split(measured))
    n_it = len(it_rows)
    source += (f"; iterative path fitted to {n_it} iterative rows" if n_it else "; iterative path: package defaults")
    return (t, m, eff, source, it_t, it_eff, shared or (0.0, 0.0), divided or DEFAULT_DIVIDED_PER_UNKNOWN)


#: the phase of `bench joint` that is one joint objective evaluation with gradient and Hessian
JOINT_PHASE = "package: objective + gradient + Hessian"


def read_joint(paths) -> list:
    """Anchors from ``bcp-hpc bench joint --json`` files: unknowns, ranks, seconds and peak memory
    (largest rank, all ranks) of the evaluation."""
    import json
    out = []
    for path in paths or []:
        if not os.path.exists(path):
            raise InputError("bench joint JSON not found (run `bcp-hpc bench joint --json FILE` first)", path=path)
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as exc:
            raise InputError(f"not a JSON file: {exc}", path=path) from None
        if not isinstance(d, dict) or d.get("benchmark") != "joint":
            raise InputError("not the JSON of `bcp-hpc bench joint` (key 'benchmark' is not 'joint')", path=path)
        try:
            anchor = {"path": path, "source": d.get("source", "?"), "unknowns": int(d["unknowns"]),
                      "ranks": int(d["ranks"]), "seconds": float(d["seconds"][JOINT_PHASE]),
                      "peak_rank": float(d["peak_rss_bytes_per_phase"][JOINT_PHASE]),
                      "out_of_core": d.get("solver_path") == "ooc"}
            totals = d.get("peak_rss_bytes_all_ranks_per_phase") or {}
            anchor["peak_total"] = float(totals.get(JOINT_PHASE, anchor["peak_rank"] * anchor["ranks"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"bench joint JSON lacks {exc} (written by an older bcp-hpc?)", path=path) from None
        out.append(anchor)
    kinds = {a["out_of_core"] for a in out}
    if len(kinds) > 1:
        ooc = [a["path"] for a in out if a["out_of_core"]]
        raise InputError("the --joint files mix in-core and out-of-core runs (out of core: "
                         f"{', '.join(ooc)}); predict each kind from its own runs", path=ooc[0])
    return out


def ladder_joint(csv_path):
    """The joint rows of a ``bcp-hpc bench scaling --solver joint`` CSV: anchors as :func:`read_joint`
    gives them (the summed memory taken as the largest rank's times the ranks), the evaluation's
    efficiency per doubling (mean 2-rank efficiency; None without 1- and 2-rank rows of one rung) and
    the split of the largest rung's memory per rank into a shared and a divided part (``memory_split``
    of the ladder, fitted on the rows of 2 and more ranks where there are two such rank counts; None
    with one rank count)."""
    if not csv_path:
        return [], None, None
    from ..bench.scaling import JOINT, memory_split, read_rows, summarize
    rows = [r for r in read_rows(csv_path) if r["status"] == "ok" and r["solver"] == JOINT]
    anchors = [{"path": csv_path, "source": r["rung"], "unknowns": r["unknowns"], "ranks": r["ranks"],
                "seconds": r["factor_solve_s"], "peak_rank": r["peak_rss_bytes"],
                "peak_total": r["peak_rss_bytes"] * r["ranks"], "out_of_core": False} for r in rows]
    effs = [e["parallel_efficiency"] for e in summarize(rows)["efficiency"]
            if e["ranks"] == 2 and e["parallel_efficiency"]]
    splits = [m for m in memory_split(rows) if m["phase"] == "run"]
    split = max(splits, key=lambda m: m["unknowns"]) if splits else None
    return anchors, (max(min(sum(effs) / len(effs), 1.0), 0.3) if effs else None), split


def joint_fit(anchors, time_exponent: float, memory_exponent: float) -> dict:
    """Anchor (largest grid) and exponents of the joint evaluation's time and summed memory in N."""
    import numpy as np
    by_ranks = {}
    for a in anchors:
        by_ranks.setdefault(a["ranks"], {})[a["unknowns"]] = a
    ranks, rows = max(by_ranks.items(), key=lambda kv: (len(kv[1]), max(kv[1]), kv[0]))   # ties: more ranks
    fitted = len(rows) >= 2
    if fitted:
        n = np.log([float(x) for x in rows])
        time_exponent = float(np.polyfit(n, np.log([r["seconds"] for r in rows.values()]), 1)[0])
        memory_exponent = float(np.polyfit(n, np.log([r["peak_total"] for r in rows.values()]), 1)[0])
    return {"anchor": rows[max(rows)], "time_exponent": time_exponent, "memory_exponent": memory_exponent,
            "fitted": fitted}


def predict_joint(unknowns, fit, eff, mem_per_rank, split=None) -> dict:
    """Ranks (power of two within 80 % of a rank's memory; None if no rank count fits), largest rank's
    memory and time of one joint evaluation at ``unknowns``.  With ``split`` (a ladder's shared and
    divided parts at its size) the largest rank holds ``(shared + divided / k) (N / N_s)^q``; without
    it, the anchor's summed memory divided by ``k`` times the anchor's imbalance."""
    a = fit["anchor"]
    r = unknowns / a["unknowns"]
    total = a["peak_total"] * r ** fit["memory_exponent"]
    imbalance = max(a["peak_rank"] * a["ranks"] / a["peak_total"], 1.0)
    t_anchor_ranks = a["seconds"] * r ** fit["time_exponent"]

    def per_rank(k):
        if split is not None:
            grow = (unknowns / split["unknowns"]) ** fit["memory_exponent"]
            return (split["shared_bytes"] + split["divided_bytes"] / k) * grow
        return imbalance * total / k

    def seconds(k):
        return t_anchor_ranks * a["ranks"] * eff ** math.log2(a["ranks"]) / (k * eff ** math.log2(k))

    k = 1
    while per_rank(k) > 0.8 * mem_per_rank and k < 2**20:
        k *= 2
    if per_rank(k) > 0.8 * mem_per_rank:
        k = None                                   # the shared part alone exceeds a rank's memory
    return {"unknowns": unknowns, "ranks": k, "memory_per_rank_bytes": None if k is None else per_rank(k),
            "seconds": None if k is None else seconds(k),
            "memory_per_rank_at_anchor_ranks_bytes": per_rank(a["ranks"]), "seconds_at_anchor_ranks": t_anchor_ranks}


def _ranks(shared, divided, mem_per_rank):
    """Smallest power of two k with ``shared + divided / k`` within 80 % of a rank's memory (None: never)."""
    if shared >= 0.8 * mem_per_rank:
        return None
    k = 1
    while shared + divided / k > 0.8 * mem_per_rank and k < 2**20:
        k *= 2
    return k


def predict(unknowns, time_fit, mem_fit, eff, mem_per_rank, it_time=DEFAULT_ITERATIVE_TIME,
            it_eff=DEFAULT_ITERATIVE_EFFICIENCY, shared=(0.0, 0.0), it_divided=DEFAULT_DIVIDED_PER_UNKNOWN):
    mem = mem_fit[0] * unknowns ** mem_fit[1]
    t1 = time_fit[0] * unknowns ** time_fit[1]
    shared_b = shared[0] + shared[1] * unknowns
    out = {}
    for path, factor in FACTOR_MEMORY_FRACTION.items():
        k = _ranks(shared_b, 1.3 * factor * mem, mem_per_rank)
        out[path] = {"memory_bytes": factor * mem, "shared_bytes_per_rank": shared_b, "ranks": k,
                     "seconds": None if k is None else t1 / (k * eff ** math.log2(k))}
    mem_i = it_divided * unknowns
    k = _ranks(shared_b, mem_i, mem_per_rank)
    t1_i = it_time[0] * unknowns ** it_time[1]
    out["iterative"] = {"memory_bytes": shared_b + mem_i, "shared_bytes_per_rank": shared_b, "ranks": k,
                        "memory_per_rank_bytes": None if k is None else shared_b + mem_i / k,
                        "seconds": None if k is None else t1_i / (k * it_eff ** math.log2(k))}
    return out


def run(args):
    files = read_joint(getattr(args, "joint", None))   # bad --joint files are refused before anything is printed
    tfit, mfit, eff, source, it_time, it_eff, shared, it_div = _fits(args.csv)
    mem_node = _bytes(args.mem_per_node)
    mem_rank = mem_node / args.ranks_per_node
    rprint(f"bcp-hpc plan: {source}")
    rprint(f"  time(1 rank) = {tfit[0]:.3e} N^{tfit[1]:.2f} s; factor memory = {mfit[0]:.3e} N^{mfit[1]:.2f} bytes; "
           f"efficiency per doubling {eff:.2f}; node {mem_node / 2**30:.0f} GiB x {args.ranks_per_node} ranks")
    rprint(f"  iterative: time(1 rank) = {it_time[0]:.3e} N^{it_time[1]:.2f} s, efficiency per doubling {it_eff:.2f}; "
           f"memory of the largest rank = {shared[0] / 2**30:.2f} GiB + {shared[1]:.0f} B x N (every rank) "
           f"+ {it_div:.0f} B x N / ranks")
    rprint(f"{'grid':>8s} {'layers':>6s} {'tracers':>7s} {'unknowns':>12s} | {'direct: GiB':>11s} {'ranks':>6s} "
           f"{'nodes':>5s} {'time':>9s} | {'ooc: ranks':>10s} {'time':>9s} | {'iterative: GiB':>14s} {'ranks':>5s} "
           f"{'time':>9s}")
    rows = []
    for res, nz in GRIDS:
        for tracers in (4, 11):
            n = OCIM2_WET * COLUMN_FACTOR[res] * nz // 24 * tracers
            p = predict(n, tfit, mfit, eff, mem_rank, it_time, it_eff, shared, it_div)
            d, o, it = p["direct"], p["ooc"], p["iterative"]
            nodes = None if d["ranks"] is None else math.ceil(d["ranks"] / args.ranks_per_node)
            rprint(f"{res:>8s} {nz:6d} {tracers:7d} {n:12,d} | {d['memory_bytes'] / 2**30:11.1f} {_k(d['ranks']):>6s} "
                   f"{_k(nodes):>5s} {_hms(d['seconds']):>9s} | {_k(o['ranks']):>10s} {_hms(o['seconds']):>9s} | "
                   f"{it['memory_bytes'] / 2**30:14.1f} {_k(it['ranks']):>5s} {_hms(it['seconds']):>9s}")
            rows.append({"grid": res, "layers": nz, "tracers": tracers, "unknowns": n, **p, "nodes_direct": nodes})
    joint = _joint_rows(args, files, tfit, mfit, eff, mem_rank)
    if args.json:
        import json
        from ..io.atomic import write_text_atomic
        write_text_atomic(args.json, json.dumps({"source": source, "efficiency": eff, "time_fit": tfit,
                                                 "memory_fit": mfit, "iterative_time_fit": it_time,
                                                 "iterative_efficiency": it_eff, "shared_fit": shared,
                                                 "iterative_divided_per_unknown": it_div, "rows": rows,
                                                 "joint": joint}, indent=2) + "\n")
    return 0


def _joint_rows(args, files, tfit, mfit, eff, mem_rank):
    """The joint table from the ``--joint`` anchors ``files`` (see :func:`read_joint`) and the ladder's joint rows."""
    ladder, ladder_eff, split = ladder_joint(getattr(args, "csv", None))
    if files and files[0]["out_of_core"]:
        # the ladder's joint rows factor in core: an out-of-core prediction rests on the files alone
        ladder, ladder_eff, split = [], None, None
    anchors = files + ladder
    if not anchors:
        return None
    eff_how = "the direct path's"
    if ladder_eff is not None:
        eff, eff_how = ladder_eff, "the ladder's joint rows'"
    fit = joint_fit(anchors, tfit[1], mfit[1])
    a = fit["anchor"]
    how = "fitted to the runs" if fit["fitted"] else "the direct path's exponents"
    kind = "out of core, " if a.get("out_of_core") else ""
    rprint(f"joint P-C-O evaluation ({kind}objective + gradient + Hessian), anchored on {a['source']} "
           f"({a['unknowns']:,d} unknowns, {a['ranks']} ranks: {a['seconds']:.0f} s, {a['peak_rank'] / 2**30:.2f} GiB "
           f"largest rank); time ~ N^{fit['time_exponent']:.2f}, memory ~ N^{fit['memory_exponent']:.2f} ({how}); "
           f"efficiency per doubling {eff:.2f} ({eff_how})")
    if split is not None:
        rprint(f"  memory of the largest rank from the ladder's joint rows ({split['rung']}, fitted on "
               f"{', '.join(map(str, split['fitted_on_ranks']))} ranks): ({split['shared_bytes'] / 2**30:.2f} GiB + "
               f"{split['divided_bytes'] / 2**30:.2f} GiB / ranks) x (N / {split['unknowns']:,d})^q")
    rprint(f"{'grid':>8s} {'layers':>6s} {'unknowns':>12s} | {'ranks':>5s} {'GiB/rank':>8s} {'time':>9s} | "
           f"{'at ' + str(a['ranks']) + ' ranks: GiB/rank':>22s} {'time':>9s}")
    rows = []
    for res, nz in [("2deg", 24)] + GRIDS[1:]:
        n = OCIM2_WET * COLUMN_FACTOR[res] * nz // 24 * 11
        p = predict_joint(n, fit, eff, mem_rank, split)
        per_rank = "-" if p["ranks"] is None else f"{p['memory_per_rank_bytes'] / 2**30:.1f}"
        rprint(f"{res:>8s} {nz:6d} {n:12,d} | {_k(p['ranks']):>5s} {per_rank:>8s} "
               f"{_hms(p['seconds']):>9s} | {p['memory_per_rank_at_anchor_ranks_bytes'] / 2**30:22.1f} "
               f"{_hms(p['seconds_at_anchor_ranks']):>9s}")
        rows.append({"grid": res, "layers": nz, **p})
    check = joint_holdout(anchors, eff, mem_rank)
    if check:
        rprint(f"check out of sample: fitted to the {check['fitted_to']} smaller sizes, the largest ({check['source']}, "
               f"{check['unknowns']:,d} unknowns, {check['ranks']} ranks) is predicted at {check['predicted_seconds']:.0f} s "
               f"and {check['predicted_peak_rank'] / 2**30:.2f} GiB on its largest rank; measured "
               f"{check['measured_seconds']:.0f} s and {check['measured_peak_rank'] / 2**30:.2f} GiB "
               f"(errors {_percent(check['time_error'])}, {_percent(check['memory_error'])})")
    return {"anchor": a, "time_exponent": fit["time_exponent"], "memory_exponent": fit["memory_exponent"],
            "fitted": fit["fitted"], "efficiency": eff, "memory_split": split, "rows": rows, "holdout": check}


def joint_holdout(anchors, eff, mem_rank):
    """With three or more grid sizes at one rank count: the law fitted without the largest size, its
    prediction of that size and the relative errors in time and largest-rank memory (None otherwise)."""
    fit = joint_fit(anchors, 0.0, 0.0)
    ranks = fit["anchor"]["ranks"]
    same = {a["unknowns"]: a for a in anchors if a["ranks"] == ranks}
    if len(same) < 3:
        return None
    largest = same.pop(max(same))
    p = predict_joint(largest["unknowns"], joint_fit(list(same.values()), 0.0, 0.0), eff, mem_rank)
    t, m = p["seconds_at_anchor_ranks"], p["memory_per_rank_at_anchor_ranks_bytes"]
    return {"source": largest["source"], "unknowns": largest["unknowns"], "ranks": ranks, "fitted_to": len(same),
            "predicted_seconds": t, "measured_seconds": largest["seconds"], "time_error": t / largest["seconds"] - 1,
            "predicted_peak_rank": m, "measured_peak_rank": largest["peak_rank"],
            "memory_error": m / largest["peak_rank"] - 1}


def _percent(x):
    """``x`` as a signed whole percentage (no "-0 %")."""
    return f"{round(100 * x) + 0:+d} %"


def _bytes(text):
    t = str(text).strip().upper()
    mult = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    if t and t[-1] in mult:
        return float(t[:-1]) * mult[t[-1]]
    return float(t)


def _k(value):
    return "-" if value is None else str(value)


def _hms(s):
    if s is None:
        return "no fit"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
