"""A *world*: grid + transport operator + forcing fields, from whichever source the user has.

Sources
-------
* ``embedded``: the package's own procedurally generated 4 degree world with the
  synthetic circulation and synthetic NPP / phosphate / temperature (no data needed).
* ``ocim2-mask``: the real OCIM2 mask (``M3d91x180x24.mat``) with the synthetic
  circulation; real WOA phosphate and temperature when the data folder has them.
* ``ocim2``: a user's OCIM2 transport file (``OCIM2_CTL_He.mat``), read as is; every forcing field
  comes from the user's inputs (``[world] inputs``): nothing synthetic stands in for a missing one.
* ``generated-2deg``: a generated 2 degree world of OCIM2 size (benchmarks without data).
* ``generated-2.5deg``: a generated 2.5 degree world (111,066 boxes), between the embedded world and
  OCIM2's size (the planner's third size of the joint model).
* ``tiny``: a 12 degree, 8-layer generated world for tests and quick checks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..data.observations import OBSERVATION_FIELDS
from ..errors import InputError
from ..grid.embedded import GENERATED_GRIDS, generated_grid, synthetic_npp, synthetic_phosphate, synthetic_temperature
from ..grid.grid import Grid
from ..grid.ocim2 import read_grid
from ..io import matfile
from .circulation import CirculationConfig
from .io import read_ocim2
from .rows import (MatrixTransport, ScatteredTransport, StreamedTransport, SyntheticTransport, TransportSource,
                   restrict_rows)

OCIM2_MASK_FILE = "M3d91x180x24.mat"
#: every world source by name
WORLD_SOURCES = ("embedded", "ocim2-mask", "ocim2", *(g for g in GENERATED_GRIDS if g != "embedded"))


@dataclass
class World:
    grid: Grid
    transport: TransportSource     #: where T (s^-1, natural order) comes from, row by row
    npp_products: dict             #: name -> (nlat, nlon) column NPP, mg C m^-2 d^-1 (NaN on land)
    dip_gamma: np.ndarray          #: phosphate climatology used in the uptake rate, mmol m^-3 (n-vector)
    temperature: np.ndarray        #: deg C (n-vector)
    source: str = "embedded"
    info: dict = field(default_factory=dict)
    #: extra forcing of the carbon/oxygen cycles when the source has it: "salinity" (n-vector),
    #: "silicate" (n-vector, mmol m-3), "piston_velocity" ((nlat, nlon), m s-1), "pme" (n-vector, s-1),
    #: "sea_level_pressure" ((nlat, nlon), atm); missing ones are generated where ``stand_ins`` allows
    extra: dict = field(default_factory=dict)
    #: synthetic stand-ins for missing forcing (the package's generated worlds); False for a user's
    #: transport matrix, where a missing field is an error naming it
    stand_ins: bool = True

    @property
    def T(self):
        """The whole transport operator (SciPy CSR, s^-1, natural order), built on first use and kept: for
        writing files and serial tools.  Solves use :meth:`transport_rows` (a rank's rows only)."""
        if getattr(self, "_T", None) is None:
            self._T = self.transport.full()
        return self._T

    def transport_rows(self, rows_natural):
        """``T`` restricted to rows ``rows_natural`` (n x n, the other rows empty; see
        :mod:`bcp_hpc.operators.rows`); taken from the whole ``T`` when that was built already."""
        if getattr(self, "_T", None) is not None:
            return restrict_rows(self._T, rows_natural)
        return self.transport.rows(rows_natural)

    def has(self, name: str) -> bool:
        """Whether the world has forcing ``name`` (npp, po4, temperature or an extra field) of its own."""
        if name == "npp":
            return bool(self.npp_products)
        if name == "po4":
            return self.dip_gamma is not None
        if name == "temperature":
            return self.temperature is not None
        return name in self.extra

    def require(self, names):
        """Every forcing in ``names`` is there (or may be stood in for); else one error naming all that miss."""
        missing = [n for n in names if not self.has(n) and (not self.stand_ins or n in ("npp", "po4", "temperature"))]
        if missing:
            raise InputError(f"the {self.source} world has no {', '.join(f'{m} ({FORCING_DOC[m]})' for m in missing)}; "
                             "give them with --inputs ([world] inputs): a `bcp-hpc data build` file (recipe sections "
                             f"{', '.join(RECIPE_SECTION[m] for m in missing)}) or an OCIM2 data folder",
                             path=self.info.get("operator_file"))

    def forcing(self, name: str) -> np.ndarray:
        """Forcing field ``name``; the synthetic stand-in when the world has none and allows one (recorded in
        ``info``)."""
        if name in self.extra:
            return self.extra[name]
        if not self.stand_ins:
            self.require([name])
        from ..grid import embedded as gen
        makers = {"salinity": gen.synthetic_salinity, "silicate": gen.synthetic_silicate,
                  "piston_velocity": gen.synthetic_piston_velocity, "pme": gen.synthetic_pme,
                  "sea_level_pressure": lambda g: np.where(g.mask[:, :, 0], 1.0, np.nan)}
        if name not in makers:
            raise InputError(f"unknown forcing field '{name}' (have {sorted(makers)})")
        self.info.setdefault("synthetic_forcing", []).append(name)
        self.extra[name] = makers[name](self.grid)
        return self.extra[name]

    def npp(self, product: str | None = None) -> np.ndarray:
        if not self.npp_products:
            self.require(["npp"])
        if product is None:
            product = next(iter(self.npp_products))
        if product not in self.npp_products:
            raise InputError(f"NPP product '{product}' not available (have {sorted(self.npp_products)})")
        return self.npp_products[product]


#: what each forcing field is, and where a recipe gives it
FORCING_DOC = {"npp": "satellite NPP, mg C m-2 d-1", "po4": "phosphate climatology of the uptake, mmol m-3",
               "temperature": "temperature, deg C", "salinity": "salinity", "silicate": "silicate, mmol m-3",
               "piston_velocity": "gas transfer velocity at Sc 660, m s-1",
               "sea_level_pressure": "sea-level pressure, atm", "pme": "precipitation minus evaporation"}
RECIPE_SECTION = {"npp": "[npp.<product>]", "po4": "[fields.po4]", "temperature": "[fields.temperature]",
                  "salinity": "[fields.salinity]", "silicate": "[fields.si]",
                  "piston_velocity": "[forcing.piston_velocity]", "sea_level_pressure": "[forcing.sea_level_pressure]",
                  "pme": "[forcing.pme]"}


def _synthetic_fields(grid: Grid):
    return ({p: synthetic_npp(grid, p) for p in ("vgpm", "cbpm", "cafe")},
            synthetic_phosphate(grid), synthetic_temperature(grid))


def _synthetic_world(grid: Grid, source: str, circulation: CirculationConfig | None = None) -> World:
    npp, po4, temp = _synthetic_fields(grid)
    return World(grid, SyntheticTransport(grid, circulation), npp, po4, temp, source=source)


def _load_field(path: str, var: str, grid: Grid) -> np.ndarray:
    d = matfile.load(path, [var])
    arr = matfile.get(d, var, path)
    return grid.from3d(np.asarray(arr, dtype=float), name=var, path=path)


def ocim2_mask_world(data_dir: str, circulation: CirculationConfig | None = None) -> World:
    """Real OCIM2 mask + synthetic circulation; real WOA phosphate/temperature when present."""
    mpath = os.path.join(data_dir, OCIM2_MASK_FILE)
    grid = read_grid(mpath)
    npp, po4, temp = _synthetic_fields(grid)
    info = {"mask_file": mpath}
    p = os.path.join(data_dir, "po4obs_91x180x24.mat")
    if os.path.exists(p):
        po4 = np.maximum(_load_field(p, "po4obs", grid), 0.05)
        info["po4_file"] = p
    p = os.path.join(data_dir, "tempobs_91x180x24.mat")
    if os.path.exists(p):
        temp = np.maximum(_load_field(p, "tempobs", grid), -2.0)
        info["temperature_file"] = p
    return World(grid, SyntheticTransport(grid, circulation), npp, po4, temp, source="ocim2-mask", info=info)


def ocim2_world(operator_file: str, comm=None) -> World:
    """A user's OCIM2 operator file (grid + TR); its forcing comes from the user's inputs only.

    A v7.3 (HDF5) file is streamed: each rank of ``comm`` (mpi4py; default the world's) reads only the
    rows it owns, and the operator is validated by reductions (collective).  A v5 file cannot be read
    in part: on several ranks, rank 0 reads and validates it, once, and sends every rank the grid and
    its own rows (collective); converting it once with ``bcp-hpc export --world ocim2 --operator FILE
    --mat-version v7.3 --out NEW.mat`` lets every rank read its rows from the file instead."""
    if comm is None:
        from ..petsc_env import import_petsc4py
        comm = import_petsc4py().COMM_WORLD.tompi4py()
    info = {"operator_file": operator_file}
    if _streamable(operator_file):
        from ..grid.ocim2 import grid_from_matdict
        from .io import DEFAULT_CONSERVATION_TOL
        grid = grid_from_matdict(matfile.load(operator_file, skip={"output.TR", "TR"}), operator_file)
        transport = StreamedTransport(operator_file, grid)
        info.update(conservation=transport.check(comm, DEFAULT_CONSERVATION_TOL), operator_read="by rows")
    elif comm.size == 1:
        grid, T, info["conservation"] = read_ocim2(operator_file)
        transport = MatrixTransport(T)
    else:
        grid, T, defects, problem = None, None, None, None
        if comm.rank == 0:
            try:
                grid, T, defects = read_ocim2(operator_file)
            except InputError as exc:       # every rank raises it (none waits for rows that never come)
                problem = exc
        grid, defects, problem = comm.bcast((grid, defects, problem) if comm.rank == 0 else None, root=0)
        if problem is not None:
            raise problem
        transport = ScatteredTransport.scatter(operator_file, T, grid, comm)
        del T
        info.update(conservation=defects, operator_read="on rank 0, sent by rows")
    return World(grid, transport, {}, None, None, source="ocim2", stand_ins=False, info=info)


def _streamable(path: str) -> bool:
    """A v7.3 file with a sparse ``output.TR`` (or ``TR``) that can be read by rows."""
    if not os.path.isfile(path) or not matfile.is_v73(path):
        return False
    import h5py
    try:
        with h5py.File(path, "r") as f:
            for name in ("output/TR", "TR"):
                if name in f and isinstance(f[name], h5py.Group) and "jc" in f[name] and "ir" in f[name]:
                    return True
    except OSError:
        return False
    return False


def default_shared_data_dir() -> str | None:
    """``../shared/data/ocim2_91x180x24`` relative to the repository, or ``$BCP_DATA_DIR``."""
    env = os.environ.get("BCP_DATA_DIR")
    if env:
        return env if os.path.isdir(env) else None
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cand = os.path.join(os.path.dirname(here), "shared", "data", "ocim2_91x180x24")
    return cand if os.path.exists(os.path.join(cand, OCIM2_MASK_FILE)) else None


#: fields of an inputs source that a world takes, and what they force
INPUT_FORCING = {"po4": "phosphate of the uptake term (mmol m-3)", "temperature": "temperature (deg C)",
                 "salinity": "salinity", "si": "silicate (mmol m-3)"}
#: below this phosphate (mmol m-3) the uptake's 1/(DIP_obs + eps) is held (the floor of the group's code)
PO4_FLOOR = 0.05


def _physical(values: np.ndarray, name: str, path: str) -> np.ndarray:
    """``values`` if they are physically possible (the ranges of :data:`bcp_hpc.data.climatology.FIELDS`,
    with a 1 % tolerance for interpolation artefacts; never negative concentrations)."""
    from ..data.climatology import FIELDS, KIND_UNITS
    kind, (lo, hi), _ = FIELDS[name]
    v = values[np.isfinite(values)]
    if not v.size:
        return values
    negative = int((v < 0).sum()) if kind in ("concentration", "salinity") and lo >= 0 else 0
    out = int(((v < lo) | (v > hi)).sum())
    if negative or out > 0.01 * v.size:
        raise InputError(f"{negative or out} of {v.size} values outside the physical range {lo:g}..{hi:g} "
                         f"{KIND_UNITS[kind]} (found {v.min():.4g}..{v.max():.4g})", path=path, variable=name)
    return values


def _balanced_pme(grid, map2d) -> np.ndarray:
    """P-E (s-1) on the surface boxes, shifted so that its volume integral over the model's surface is zero
    (spec §3.4: the field is balanced on the grid it was made for; binned onto another grid or mask it is
    not, and a net virtual flux would move the DIC and ALK inventories, which only the 1 Myr restoring holds)."""
    top = grid.box_k == 0
    pme = np.where(top, map2d[grid.box_ilat, grid.box_ilon], 0.0)
    V = grid.box_volume
    pme[top] -= (pme * V)[top].sum() / V[top].sum()
    return pme


def apply_inputs(world: World, inputs: str) -> World:
    """Replace the world's forcing fields by those of a data source (a file made by ``bcp-hpc data
    build`` or a directory of pre-binned OCIM2 fields): NPP products, phosphate for the uptake term
    (``po4``), temperature, salinity, silicate.  The source must be on the world's grid.

    A source with none of these fields, an inputs file without NPP, negative phosphate, wrong units
    or an altered mask are errors naming the file and variable; what still comes from the world's own
    (synthetic) fields is recorded in ``world.info["forcing"]`` and printed by the runs."""
    from ..data.catalog import open_data
    grid = world.grid
    with open_data(inputs) as src:
        names = src.fields()
        prods = src.npp_products()
        used = [n for n in names if n in INPUT_FORCING]
        observed = [n for n in names if n == "dic_ant" or any(n in v for v in OBSERVATION_FIELDS.values())]
        surface_names = src.surface_fields()
        # trap stations and Earth-system models' POC flux feed the comparisons of the diagnostics
        compared = (["traps"] if src.trap_fluxes(grid) is not None else []) + list(src.esm_epc100(grid))
        if not (used or prods or observed or surface_names or compared):
            raise InputError(f"has none of the fields a run takes (forcing: {', '.join(INPUT_FORCING)}, "
                             "npp_<product>, surface maps; observations: *_obs; trap stations; esm epc100); "
                             f"found: {', '.join(names) or 'nothing'}", path=inputs)
        values = {n: _physical(src.field(n, grid), n, inputs) for n in used}
        surface = {n: src.surface(n, grid) for n in surface_names}
        for n, arr in surface.items():
            # piston velocity and pressure as maps; P-E as the model's per-box n-vector (surface boxes only)
            world.extra[n] = _balanced_pme(grid, arr) if n == "pme" else arr
        if "po4" in values:
            world.dip_gamma = np.maximum(values["po4"], PO4_FLOOR)
        if "temperature" in values:
            world.temperature = np.maximum(values["temperature"], -2.0)
        if "salinity" in values:
            world.extra["salinity"] = values["salinity"]
        if "si" in values:
            world.extra["silicate"] = values["si"]
        if prods:
            world.npp_products = {p: src.npp(p, grid) for p in prods}
        forcing = world.info.setdefault("forcing", {})
        forcing.update({n: f"{inputs}:{n}" for n in used + list(surface)})
        if prods:
            forcing["npp"] = f"{inputs}: {', '.join(prods)}"
            world.info["inputs_npp"] = prods
        world.info.setdefault("inputs_fields", []).extend(names)
    return world


def load_world(source: str = "embedded", path: str | None = None, circulation: CirculationConfig | None = None,
               inputs=None) -> World:
    """The world of ``source``; forcing fields from ``inputs`` (a data file or directory, or a list of them
    applied in order) when given."""
    world = _load_world(source, path, circulation)
    sources = [inputs] if isinstance(inputs, str) else list(inputs or [])
    for src in sources:
        apply_inputs(world, src)
    # the user's forcing beside the world's synthetic NPP is a mix nobody asks for; observations, trap
    # stations or Earth-system models alone (for the misfit and the comparisons) are not forcing
    if sources and world.stand_ins and not world.info.get("inputs_npp") and world.info.get("forcing"):
        files = [s for s in sources if not os.path.isdir(s)]
        if files:
            raise InputError("has no NPP product (npp_<product>): add an [npp] section to the `data build` recipe, "
                             "or leave --inputs out to run on the world's synthetic NPP", path=files[0])
    if sources:
        world.info["inputs"] = sources if len(sources) > 1 else sources[0]
        world.info.setdefault("forcing", {}).setdefault("npp", "the world's synthetic products")
    return world


def _load_world(source, path, circulation):
    if source in GENERATED_GRIDS:
        return _synthetic_world(generated_grid(source), source, circulation)
    if source == "ocim2-mask":
        d = path or default_shared_data_dir()
        if d is None:
            raise InputError(f"no OCIM2 data directory (pass --data DIR or set BCP_DATA_DIR; it must hold {OCIM2_MASK_FILE})")
        return ocim2_mask_world(d, circulation)
    if source == "ocim2":
        if not path:
            raise InputError("source 'ocim2' needs the operator file path (--operator FILE)")
        return ocim2_world(path)
    raise InputError(f"unknown world source '{source}' ({', '.join(WORLD_SOURCES)})")
