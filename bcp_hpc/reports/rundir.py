"""What a run folder holds, read for its report: the inversions (result, gridded state, iteration log),
an experiment's summary (sigma2 sweep, NPP products), the ideal age, a scaling benchmark, the
configuration and ``run_info.json``.  A missing or unreadable file is recorded as a problem (the report
names it) instead of stopping the report; a folder with nothing of a run is an :class:`InputError`."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..cycles import registry
from ..errors import InputError


@dataclass
class InversionFiles:
    """One inversion of the folder."""
    label: str                   #: "" for a single inversion, else its tag (``s2_0.10``, ``vgpm``)
    result_path: str
    result: dict | None = None   #: the JSON payload
    state_path: str | None = None
    iterations: list = field(default_factory=list)   #: records of the JSON-lines log

    @property
    def title(self) -> str:
        what = (self.result or {}).get("cycle", "")
        return f"{what} inversion" + (f" {self.label}" if self.label else "")


@dataclass
class RunFolder:
    path: str
    inversions: list = field(default_factory=list)
    sweep: dict | None = None            #: summary.json of a sigma2 sweep (+ ``h5``: its file)
    products: dict | None = None         #: joint_products.json
    age_path: str | None = None          #: ideal_age.h5 of the main job
    scaling: dict | None = None          #: a `bench scaling` summary with its ``measurements``
    config: dict | None = None
    run_info: dict | None = None
    problems: list = field(default_factory=list)     #: (file, what is wrong)

    @property
    def kind(self) -> str:
        if self.products is not None:
            return "joint-products"
        if self.sweep is not None:
            return "main job" if self.age_path else "sigma2-sweep"
        if self.scaling is not None:
            return "bench scaling"
        if self.inversions:
            return "inversion"
        return "run"

    def problem(self, name: str, what: str):
        self.problems.append((name, what))


def _read_json(folder: RunFolder, path: str, prefix: str = ""):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        folder.problem(prefix + os.path.basename(path), f"unreadable ({type(exc).__name__}: {exc})")
        return None


def _read_jsonl(folder: RunFolder, path: str, prefix: str = "") -> list:
    out = []
    try:
        with open(path) as fh:
            for ln, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        # the last line of a killed run may be cut short: keep what precedes it
                        folder.problem(prefix + os.path.basename(path), f"line {ln} is not JSON (ignored)")
    except OSError as exc:
        folder.problem(prefix + os.path.basename(path), f"unreadable ({exc})")
    return out


def _check_h5(folder: RunFolder, path: str, prefix: str = "") -> str | None:
    import h5py
    if not os.path.exists(path):
        folder.problem(prefix + os.path.basename(path), "missing")
        return None
    try:
        with h5py.File(path, "r") as h:
            list(h.keys())
    except (OSError, ValueError) as exc:
        folder.problem(prefix + os.path.basename(path), f"unreadable ({exc})")
        return None
    return path


def _tag_of(name: str, stem: str) -> str | None:
    """'' for ``stem.json``, the tag of ``stem_<tag>.json``, else None."""
    base = name[:-len(".json")]
    if base == stem:
        return ""
    if base.startswith(stem + "_"):
        return base[len(stem) + 1:]
    return None


def read_run(path: str) -> RunFolder:
    """The run folder ``path`` (see the module's docstring)."""
    if not os.path.isdir(path):
        raise InputError("is not a folder (expected the --out folder of a bcp-hpc run)", path=path)
    folder = RunFolder(os.path.abspath(path))
    names = set(os.listdir(path))
    p = lambda n: os.path.join(path, n)                                   # noqa: E731
    _read_inversions(folder, path, names)
    # the tasks of a SLURM job array keep their runs in folders of their own (s2_<value>, product_<name>)
    for sub in sorted(n for n in names if os.path.isdir(p(n)) and n != "figures"):
        _read_inversions(folder, p(sub), set(os.listdir(p(sub))), prefix=sub + "/")
    if "summary.json" in names or "sigma2_sweep.h5" in names:
        folder.sweep = _read_json(folder, p("summary.json")) if "summary.json" in names else {}
        if "summary.json" not in names:
            folder.problem("summary.json", "missing")
        if folder.sweep is not None:
            folder.sweep["h5"] = _check_h5(folder, p("sigma2_sweep.h5"))
    if "joint_products.json" in names:
        folder.products = _read_json(folder, p("joint_products.json"))
    if "ideal_age.h5" in names:
        folder.age_path = _check_h5(folder, p("ideal_age.h5"))
    for name in sorted(n for n in names if n.endswith(".json")):
        if name in ("summary.json", "joint_products.json", "resolved_config.json", "run_info.json", "runs_done.json"):
            continue
        if any(_tag_of(name, os.path.splitext(c.result_file)[0]) is not None for c in registry.all_cycles()):
            continue
        d = _read_json(folder, p(name))
        if isinstance(d, dict) and d.get("benchmark") == "scaling":
            folder.scaling = d
            if not d.get("measurements"):
                folder.problem(name, "a scaling summary without its measurements (made by an older bcp-hpc: "
                               "run `bcp-hpc bench scaling` again)")
    for name, attr in (("resolved_config.json", "config"), ("run_info.json", "run_info")):
        if name in names:
            setattr(folder, attr, _read_json(folder, p(name)))
    if not (folder.inversions or folder.sweep is not None or folder.products is not None or folder.scaling
            or folder.age_path):
        raise InputError("holds no results of a bcp-hpc run (no result.json, joint_result.json, summary.json, "
                         "joint_products.json, ideal_age.h5 or scaling benchmark JSON)", path=path)
    if folder.products is not None:
        order = list(folder.products.get("products", []))
        folder.inversions.sort(key=lambda i: order.index(i.label) if i.label in order else len(order))
        for prod in folder.products.get("products", []):
            if not any(i.label == prod for i in folder.inversions):
                folder.problem(f"joint_result_{prod}.json", "missing (the product's fields and iterations)")
    return folder


def _read_inversions(folder: RunFolder, path: str, names: set, prefix: str = ""):
    """The inversions whose result files are in ``path`` (``prefix``: how problems name its files)."""
    p = lambda n: os.path.join(path, n)                                   # noqa: E731
    for cycle in registry.all_cycles():
        stem = os.path.splitext(cycle.result_file)[0]
        state_stem, state_ext = os.path.splitext(cycle.state_file)
        for name in sorted(n for n in names if n.endswith(".json") and _tag_of(n, stem) is not None):
            tag = _tag_of(name, stem)
            inv = InversionFiles(tag, p(name), _read_json(folder, p(name), prefix))
            state = cycle.state_file if not tag else f"{state_stem}_{tag}{state_ext}"
            inv.state_path = _check_h5(folder, p(state), prefix)
            logs = [(inv.result or {}).get("iterations_log"), f"iterations_{tag or 'invert'}.jsonl",
                    f"iterations_joint_{tag}.jsonl"]
            log = next((n for n in logs if n and n in names), None)
            if log:
                inv.iterations = _read_jsonl(folder, p(log), prefix)
            folder.inversions.append(inv)


def read_state(path: str, names=None) -> dict:
    """Arrays of a gridded result file (``names``: those only; all by default) with ``_attrs``."""
    import h5py
    out = {}
    with h5py.File(path, "r") as h:
        for k in h:
            if names is None or k in names:
                out[k] = np.asarray(h[k][()])
        out["_attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in h.attrs.items()}
    return out
