"""PETSc options with owners, and the table of the package's own options.

PETSc reads a solver's settings from one global options database.  Nothing the package puts
there may outlive the object or block that needed it: an :class:`OptionsScope` holds the
options of one owner under its prefix (defaults, which never replace what the user gave on the
command line or in a config, and overrides, whose previous values are restored) and inserts them
only while PETSc reads them (``with scope.inserted(): ksp.setFromOptions()``), in the manner of
firedrake's ``OptionsManager.inserted_options()``.

:data:`PACKAGE_OPTIONS` declares every option the package itself reads (not PETSc's own); they
are read through :func:`get_option`, listed by ``bcp-hpc info --options`` and printed with
``-help``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..errors import ConfigError
from ..petsc_env import import_petsc4py

PETSc = import_petsc4py()


class OptionsScope:
    """Options of one owner: ``defaults`` (set only where the database has no value) and
    ``overrides`` (always set; an earlier value is restored), all names under ``prefix``.

    ``inserted()`` puts them into the database for the duration of a block and takes them out
    again (re-entrant); ``push()``/``pop()`` do the same for a longer-lived owner such as a
    command."""

    def __init__(self, prefix: str = "", defaults: dict | None = None, overrides: dict | None = None):
        self.prefix = prefix
        self.defaults = {k: str(v) for k, v in (defaults or {}).items()}
        self.overrides = {k: str(v) for k, v in (overrides or {}).items()}
        self._depth = 0
        self._added: list = []
        self._saved: dict = {}

    def set_default(self, name: str, value):
        self.defaults[name] = str(value)

    def set_override(self, name: str, value):
        """Set (and, while inserted, apply at once) ``name`` regardless of the database."""
        self.overrides[name] = str(value)
        if self._depth:
            self._apply_override(PETSc.Options(), name)

    def _apply_override(self, opts, name):
        full = self.prefix + name
        if full not in self._saved and full not in self._added:
            if opts.hasName(full):
                self._saved[full] = opts.getString(full)
            else:
                self._added.append(full)
        opts.setValue(full, self.overrides[name])

    def push(self):
        self._depth += 1
        if self._depth > 1:
            return self
        opts = PETSc.Options()
        for name in self.overrides:
            self._apply_override(opts, name)
        for name, value in self.defaults.items():
            full = self.prefix + name
            if name not in self.overrides and not opts.hasName(full):
                opts.setValue(full, value)
                self._added.append(full)
        return self

    def pop(self):
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth:
            return
        opts = PETSc.Options()
        for full in self._added:
            opts.delValue(full)
        for full, value in self._saved.items():
            opts.setValue(full, value)
        self._added, self._saved = [], {}

    @contextlib.contextmanager
    def inserted(self):
        self.push()
        try:
            yield self
        finally:
            self.pop()

    def __enter__(self):
        return self.push()

    def __exit__(self, *exc):
        self.pop()
        return False


# ---------------------------------------------------------------------------- the package's own options

@dataclass(frozen=True)
class PackageOption:
    name: str          #: name after the prefix, e.g. "solver" for -steady_solver
    kind: str          #: string | bool | int | real
    default: object
    help: str
    where: str = "<prefix>"   #: which prefixes read it, e.g. "<prefix> of a steady state (steady_, truth_, ...)"


PACKAGE_OPTIONS = (
    PackageOption("solver", "string", "direct",
                  "steady-state path: auto | direct | structured | blocktri | ooc | iterative", "<steady prefix>"),
    PackageOption("structured", "bool", False, "shorthand for -<prefix>solver structured", "<steady prefix>"),
    PackageOption("blocktri", "bool", True,
                  "block-triangular solves along the tracer graph when it has several components", "<steady prefix>"),
    PackageOption("newton", "string", "components",
                  "Newton on a block-triangular model: components (one component at a time in dependency order, a "
                  "block refactored only when its chord steps stop contracting) | global (the whole system, every "
                  "block refactored at every iteration)", "<steady prefix>"),
    PackageOption("rhs_block", "int", 0,
                  "right-hand sides per block solve of the sensitivities (0: all; the structured path "
                  "uses 5 for large Schur complements)", "<steady prefix>"),
    PackageOption("ordering", "string", "auto",
                  "fill-reducing ordering of a direct MUMPS factor: auto | metis | solver", "<any linear solver prefix>"),
    PackageOption("outer_rtol", "real", 1e-11, "structured path: relative tolerance of the outer GMRES",
                  "<steady prefix>"),
    PackageOption("keep_ratio", "real", 0.05,
                  "structured path: water columns of eliminated dissolved pools with horizontal exchange above "
                  "this fraction of the diagonal stay in the Schur complement (negative: none)", "<steady prefix>"),
    PackageOption("eliminate_particles", "bool", True, "structured path: eliminate particle tracers column by column",
                  "<steady prefix>"),
    PackageOption("coarse_columns", "int", 4, "iterative path: water columns per coarse aggregate",
                  "<steady prefix>"),
    PackageOption("coarse_layers", "int", 2, "iterative path: layers per coarse aggregate", "<steady prefix>"),
)
_BY_NAME = {o.name: o for o in PACKAGE_OPTIONS}


def get_option(prefix: str, name: str, default=None):
    """The value of the declared package option ``-<prefix><name>`` (typed; ``default`` or the
    table's default when absent)."""
    decl = _BY_NAME.get(name)
    if decl is None:
        raise KeyError(f"option '{name}' is not declared in bcp_hpc.solvers.options.PACKAGE_OPTIONS")
    if default is None:
        default = decl.default
    opts = PETSc.Options()
    full = prefix + name
    if not opts.hasName(full):
        return default
    try:
        if decl.kind == "bool":
            return opts.getBool(full, default)
        if decl.kind == "int":
            return opts.getInt(full, default)
        if decl.kind == "real":
            return opts.getReal(full, default)
        return opts.getString(full, default)
    except PETSc.Error as exc:
        raise ConfigError(f"-{full} {opts.getString(full, '')!r}: expected a {decl.kind} ({decl.help})") from exc


def options_table() -> str:
    """The declared options as text (``bcp-hpc info --options``, ``-help``)."""
    lines = ["bcp-hpc options (single dash, after a prefix such as steady_ for the main steady state,",
             "truth_ for twin data, inv_ for the inversion's TAO; PETSc's own -<prefix>ksp_*, -<prefix>pc_*,",
             "-<prefix>mat_mumps_* and -inv_tao_* options work as usual):"]
    for o in PACKAGE_OPTIONS:
        lines.append(f"  -<prefix>{o.name} <{o.kind}>  (default {o.default}; read at {o.where})")
        lines.append(f"      {o.help}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- reasons by name

def _reason_names(enum) -> dict:
    return {getattr(enum, k): k for k in dir(enum) if not k.startswith("_") and isinstance(getattr(enum, k), int)}


def ksp_reason(code: int) -> str:
    """KSPConvergedReason by name, e.g. ``DIVERGED_ITS (-3)``."""
    return f"{_reason_names(PETSc.KSP.ConvergedReason).get(int(code), 'UNKNOWN')} ({int(code)})"


def tao_reason(code: int) -> str:
    """TaoConvergedReason by name, e.g. ``CONVERGED_GATOL (3)``."""
    return f"{_reason_names(PETSc.TAO.Reason).get(int(code), 'UNKNOWN')} ({int(code)})"
