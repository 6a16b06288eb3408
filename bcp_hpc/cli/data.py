"""``bcp-hpc data build`` and ``bcp-hpc data check``."""
from __future__ import annotations

import json
import os

from ..data.build import build
from ..data.catalog import Ocim2Directory, open_data
from ..data.check import check_directory, check_inputs, format_table
from ..data.grids import grid_from_spec
from ..data.inputs import write_inputs
from ..data.npp import global_npp_pg_c_per_yr
from ..data.synthetic import synthetic_inputs
from ..errors import InputError
from ..io.atomic import write_text_atomic
from ..log import mpi_rank, rprint


def data_build(args):
    if mpi_rank() != 0:
        return 0  # serial work: rank 0 builds the file
    if args.synthetic:
        grid = grid_from_spec(args.grid or "embedded")
        fields, npp = synthetic_inputs(grid)
        write_inputs(args.out, grid, fields=fields, npp=npp, recipe="# synthetic (bcp_hpc.data.synthetic)\n")
        summary = {"out": args.out, "grid": grid.name, "fields": [f.name for f in fields], "npp": sorted(npp),
                   "npp_pg_c_per_yr": {k: global_npp_pg_c_per_yr(v["npp"], grid) for k, v in npp.items()}}
    else:
        if not args.recipe:
            raise InputError("data build needs a recipe (TOML) or --synthetic")
        summary = build(args.recipe, args.out, args.grid)
    rprint(f"wrote {summary['out']} on {summary['grid']}: fields {', '.join(summary['fields']) or '-'}; "
           f"NPP {', '.join(f'{k} {v:.1f} Pg C/yr' for k, v in summary['npp_pg_c_per_yr'].items()) or '-'}")
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=2, default=str) + "\n")
    return 0


def data_check(args):
    if mpi_rank() != 0:
        return 0
    src = open_data(args.path)
    if isinstance(src, Ocim2Directory):
        grid = grid_from_spec(args.grid) if args.grid else src.grid()
        rows = check_directory(src, grid)
    else:
        try:
            grid = grid_from_spec(args.grid or _grid_name(src))
            rows = check_inputs(src, grid)
        finally:
            src.close()
    rprint(f"data check of {args.path} against {grid.name} ({grid.nwet} wet boxes)")
    rprint(format_table(rows))
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=2) + "\n")
    return 2 if any(r["status"] == "error" for r in rows) else 0


def _grid_name(src):
    name = src.h.attrs["grid_name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    if name.startswith("embedded-15x30x8"):
        return "tiny"
    if name.startswith("embedded-91x180x24"):
        return "generated-2deg"
    if name.startswith("embedded"):
        return "embedded"
    if os.path.exists(name):
        return name
    raise InputError(f"the file was built on grid '{name}'; pass --grid to check it", path=src.path)
