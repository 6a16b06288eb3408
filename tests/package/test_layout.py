"""The layout tells the data flow: every module imports only modules of its own or earlier stages.

    base (errors, log, memory, constants, settings, petsc_env, io) -> grid -> data -> operators -> models
    -> solvers -> inversion -> diagnostics -> experiments -> reports -> bench -> cli

A cycle package spans stages file by file: its declaration (``__init__``, ``config``, ``run``,
``processes``, ``model`` and helpers) is at the models stage, ``diagnostics.py`` at diagnostics,
``experiments.py`` at experiments, ``report.py`` at reports."""
import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bcp_hpc")
STAGES = ["base", "grid", "data", "operators", "models", "solvers", "inversion", "diagnostics", "experiments",
          "reports", "bench", "cli"]
BASE = {"__init__", "errors", "log", "memory", "constants", "settings", "petsc_env", "io"}
CYCLE_FILES = {"diagnostics": "diagnostics", "experiments": "experiments", "report": "reports"}


def stage(module: str) -> str:
    """Stage of a dotted module name inside bcp_hpc (without the 'bcp_hpc.' prefix)."""
    parts = module.split(".")
    head = parts[0]
    if head in BASE:
        return "base"
    if head == "config":
        return "cli"
    if head == "cycles":
        if len(parts) >= 3:
            return CYCLE_FILES.get(parts[2], "models")
        return "models"
    assert head in STAGES, module
    return head


def modules():
    for root, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                yield rel, path


def imports(rel: str, path: str):
    """Every bcp_hpc module ``rel`` imports (absolute or relative, at any depth of the file)."""
    tree = ast.parse(open(path).read())
    pkg = rel.split(".")[:-1] if not rel.endswith("__init__") else rel.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target + "." + a.name for a in node.names] if not node.module else [target]
                for t in names:
                    yield t
            elif node.module and node.module.startswith("bcp_hpc"):
                yield node.module[len("bcp_hpc."):] if node.module != "bcp_hpc" else "__init__"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("bcp_hpc."):
                    yield a.name[len("bcp_hpc."):]


def test_every_module_imports_only_earlier_stages():
    bad = []
    for rel, path in modules():
        mine = STAGES.index(stage(rel))
        for target in imports(rel, path):
            if not target or target.split(".")[0] not in BASE | set(STAGES) | {"cycles", "config"}:
                continue
            theirs = STAGES.index(stage(target))
            if theirs > mine:
                bad.append(f"{rel} ({stage(rel)}) imports {target} ({stage(target)})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("cycle", ["phosphorus", "pco"])
def test_cycle_folders_hold_their_declaration_and_hooks(cycle):
    folder = os.path.join(PACKAGE, "cycles", cycle)
    for f in ("__init__.py", "config.py", "run.py", "model.py", "diagnostics.py", "report.py", "experiments.py"):
        assert os.path.exists(os.path.join(folder, f)), f
