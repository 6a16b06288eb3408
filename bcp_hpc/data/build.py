"""``bcp-hpc data build``: a recipe (TOML) -> one model-grid input file.

Recipe::

    [grid]
    source = "embedded"               # embedded | tiny | generated-2deg | OCIM2 .mat file | directory with it

    [fields.po4]                      # model field name: po4 o2 si no3 dic alk temperature salinity
    file = "woa18_all_p00_01.nc"      # NetCDF-3/4 (gzip allowed); relative to the recipe's folder
    variable = "p_an"
    # units = "umol/kg"               # only for files without a units attribute
    # fill = true                     # default: fill where the model needs a value (po4, temperature, salinity)

    [npp.vgpm]                        # vgpm | cbpm | cafe
    files = "npp/vgpm.*.hdf.gz"       # a glob or a list of files (monthly Ocean Productivity HDF4)
    years = [2003, 2012]              # inclusive; default: every year present

    [forcing.piston_velocity]         # piston_velocity (m s-1) | sea_level_pressure (atm) | pme (P - E)
    file = "kw660.nc"                 # a 2-D (lat, lon) field; a time axis is averaged
    variable = "kw"
    # units = "cm/h"                  # only for files without (or with an odd) units attribute

    [traps]
    file = "Mouw2016_flux_compilation.csv"
    # columns = { flux = "POC_flux_mg_m2_d" }

    [esm.CESM2]
    file = "epc100_Omon_CESM2_historical_r1i1p1f1_gr_185001-201412.nc"
    variable = "epc100"
    years = [1990, 2014]

Temperature and salinity are binned first so that umol kg^-1 -> mmol m^-3 uses the
in-situ density (EOS-80); without them the density is 1025 kg m^-3.  Every input error
names the file and variable and leaves no output file behind (atomic write).
"""
from __future__ import annotations

import glob
import logging
import os
import time

import numpy as np

from ..errors import ConfigError, InputError
from ..io.tomlfile import load_toml
from .climatology import FIELDS, bin_field, insitu_density
from .esm import epc100_climatology
from .grids import grid_from_spec
from .inputs import write_inputs
from .npp import PRODUCTS, global_npp_pg_c_per_yr, npp_climatology
from .surface import SURFACE, surface_field
from .traps import match_traps

log = logging.getLogger(__name__)
KEYS = {
    "grid": {"source"},
    "field": {"file", "variable", "units", "fill"},
    "npp": {"files", "years", "variable", "units"},
    "forcing": {"file", "variable", "units"},
    "traps": {"file", "columns"},
    "esm": {"file", "variable", "years", "units"},
}


def load_recipe(path: str) -> dict:
    r = load_toml(path, "recipe")
    unknown = set(r) - {"grid", "fields", "npp", "forcing", "traps", "esm"}
    if unknown:
        raise ConfigError(f"recipe {path}: unknown section(s) {sorted(unknown)} (known: grid, fields, npp, forcing, "
                          "traps, esm)")

    def keys(sec, d, allowed):
        bad = set(d) - allowed
        if bad:
            raise ConfigError(f"recipe {path}: unknown key(s) {sorted(bad)} in [{sec}] (known: {sorted(allowed)})")

    keys("grid", r.get("grid", {}), KEYS["grid"])
    for n, d in r.get("fields", {}).items():
        if n not in FIELDS:
            raise ConfigError(f"recipe {path}: unknown field [fields.{n}] (known: {sorted(FIELDS)})")
        keys(f"fields.{n}", d, KEYS["field"])
        for req in ("file", "variable"):
            if req not in d:
                raise ConfigError(f"recipe {path}: [fields.{n}] needs '{req}'")
    for n, d in r.get("npp", {}).items():
        if n not in PRODUCTS:
            raise ConfigError(f"recipe {path}: unknown NPP product [npp.{n}] (known: {PRODUCTS})")
        keys(f"npp.{n}", d, KEYS["npp"])
        if "files" not in d:
            raise ConfigError(f"recipe {path}: [npp.{n}] needs 'files'")
    for n, d in r.get("forcing", {}).items():
        if n not in SURFACE:
            raise ConfigError(f"recipe {path}: unknown forcing [forcing.{n}] (known: {sorted(SURFACE)})")
        keys(f"forcing.{n}", d, KEYS["forcing"])
        for req in ("file", "variable"):
            if req not in d:
                raise ConfigError(f"recipe {path}: [forcing.{n}] needs '{req}'")
    if "traps" in r:
        keys("traps", r["traps"], KEYS["traps"])
        if "file" not in r["traps"]:
            raise ConfigError(f"recipe {path}: [traps] needs 'file'")
    for n, d in r.get("esm", {}).items():
        keys(f"esm.{n}", d, KEYS["esm"])
        if "file" not in d:
            raise ConfigError(f"recipe {path}: [esm.{n}] needs 'file'")
    return r


def _years(v, where):
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v) and v[0] <= v[1]):
        raise ConfigError(f"{where}: years must be [first, last], got {v!r}")
    return list(range(v[0], v[1] + 1))


def build(recipe_path: str, out: str, grid_override: str | None = None) -> dict:
    """Build the input file ``out`` from the recipe; returns a summary dict."""
    r = load_recipe(recipe_path)
    base = os.path.dirname(os.path.abspath(recipe_path))

    def p(f):
        return f if os.path.isabs(f) else os.path.join(base, f)

    grid = grid_from_spec(grid_override or r.get("grid", {}).get("source", "embedded"), base)
    log.info("grid %s", grid.summary())
    t0 = time.perf_counter()
    fields = {}
    specs = r.get("fields", {})
    density = None
    for name in ("temperature", "salinity"):
        if name in specs:
            s = specs[name]
            fields[name] = bin_field(p(s["file"]), s["variable"], grid, name=name, units=s.get("units"),
                                     fill=s.get("fill"))
            log.info("binned %s from %s", name, s["file"])
    if "temperature" in fields and "salinity" in fields:
        density = insitu_density(grid, np.maximum(fields["temperature"].values, -2.0), fields["salinity"].values)
    for name, s in specs.items():
        if name in fields:
            continue
        fields[name] = bin_field(p(s["file"]), s["variable"], grid, name=name, units=s.get("units"),
                                 density=density, fill=s.get("fill"))
        log.info("binned %s from %s (%s -> %s)", name, s["file"], fields[name].source_units, fields[name].units)
    npp = {}
    for prod, s in r.get("npp", {}).items():
        files = s["files"]
        files = sorted(glob.glob(p(files))) if isinstance(files, str) else [p(f) for f in files]
        if not files:
            raise InputError(f"no files match {s['files']}", path=base, variable=f"npp.{prod}")
        npp[prod] = npp_climatology(files, grid, product=prod, years=_years(s.get("years"), f"[npp.{prod}]"),
                                    variable=s.get("variable", "npp"), units=s.get("units"))
        log.info("NPP %s: %d files, years %s, global %.2f Pg C/yr", prod, len(npp[prod]["files"]),
                 npp[prod]["years"], global_npp_pg_c_per_yr(npp[prod]["npp"], grid))
    forcing = {name: surface_field(p(s["file"]), s["variable"], grid, name, units=s.get("units"))
               for name, s in r.get("forcing", {}).items()}
    traps = None
    if "traps" in r:
        traps = match_traps(p(r["traps"]["file"]), grid, r["traps"].get("columns"))
        log.info("traps: %d station-depths, %d inside the model", len(traps), int(traps.in_model.sum()))
    esm = {}
    for name, s in r.get("esm", {}).items():
        esm[name] = epc100_climatology(p(s["file"]), grid, years=_years(s.get("years"), f"[esm.{name}]"),
                                       variable=s.get("variable", "epc100"), units=s.get("units"))
    with open(recipe_path) as fh:
        text = fh.read()
    write_inputs(out, grid, fields=list(fields.values()), npp=npp, traps=traps, esm=esm, forcing=forcing,
                 recipe=text, sources={"recipe": os.path.abspath(recipe_path)})
    summary = {"out": out, "grid": grid.name, "fields": sorted(fields), "npp": sorted(npp), "forcing": sorted(forcing),
               "npp_pg_c_per_yr": {k: global_npp_pg_c_per_yr(v["npp"], grid) for k, v in npp.items()},
               "traps": len(traps) if traps is not None else 0, "esm": sorted(esm),
               "seconds": time.perf_counter() - t0}
    return summary
