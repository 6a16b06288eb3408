"""The 4-tracer phosphorus model of Wu et al. (2025), spec §2 (DIP, POP, DOP_s, DOP_l).

Uptake in the euphotic zone ``J = gamma DIP`` (W19 form by default, BGC form as a switch; see
:mod:`.processes`).  Allocation: sigma1 (0.2) to DOP_s, sigma2 to DOP_l, the rest to POP.  POP
sinks with the Martin operator and dissolves at kappa_p into **DOP_s** (paper §2.2, default) or
into DIP (``pop_to="DIP"``, BGC code; spec §8.2).  DOP_s -> DIP at kappa_d, DOP_l -> DIP at
kappa_l, geological restoring ``kappa_g (DIPbar - DIP)``.  Optimised: alpha, beta, b, kappa_d (log).
"""
from __future__ import annotations

from ...constants import SECONDS_PER_DAY, SECONDS_PER_YEAR
from ...errors import InputError
from ...models.base import Model, SinkingSpec, Tracer
from ...models.parameters import Parameter, ParameterSet
from ...operators.sinking import martin_operator
from .processes import decay, restoring, uptake, uptake_field_dict, uptake_fields

TRACERS = ("DIP", "POP", "DOPs", "DOPl")


def p_parameters(sigma2: float = 0.0) -> ParameterSet:
    return ParameterSet([
        Parameter("alpha", 5.0e-2, "s-1", "uptake scaling of eq. (1) (W19 form, NPP in mmol C m-2 s-1)",
                  optimize=True, transform="log", bounds=(1e-14, 1.0)),
        Parameter("beta", 0.5, "1", "NPP exponent of eq. (1)", optimize=True, transform="log", bounds=(1e-3, 5.0)),
        Parameter("b", 0.9, "1", "Martin exponent of POP", optimize=True, transform="log", bounds=(0.05, 5.0)),
        Parameter("kappa_d", 1.0 / (0.5 * SECONDS_PER_YEAR), "s-1", "DOP_s remineralisation rate", optimize=True,
                  transform="log", bounds=(1e-12, 1e-4)),
        Parameter("sigma1", 0.2, "1", "fraction of uptake to semi-labile DOP", transform="none", bounds=(0, 1)),
        Parameter("sigma2", sigma2, "1", "fraction of uptake to labile DOP", transform="none", bounds=(0, 0.8)),
        Parameter("kappa_l", 1.0 / (12 * 3600.0), "s-1", "labile DOP remineralisation rate (1/12 h)", transform="log",
                  bounds=(1e-9, 1e-2)),
        Parameter("kappa_p", 1.0 / (30 * SECONDS_PER_DAY), "s-1", "POP dissolution rate (1/30 d)", transform="log",
                  bounds=(1e-10, 1e-3)),
        Parameter("kappa_g", 1.0 / (1e6 * SECONDS_PER_YEAR), "s-1", "geological restoring rate (1/1 Myr)",
                  transform="log", bounds=(1e-20, 1e-6)),
    ])


def p_processes(dip_mean: float, pop_to: str = "DOPs") -> list:
    """The P cycle's sources and sinks."""
    return [
        uptake({"DIP": -1, "POP": lambda p, f: 1.0 - p["sigma1"] - p["sigma2"], "DOPs": "sigma1", "DOPl": "sigma2"}),
        decay("pop_dissolution", "POP", "kappa_p", pop_to, "POP dissolution (paper: to DOP_s; BGC code: to DIP)"),
        decay("dops_remineralisation", "DOPs", "kappa_d", "DIP", "semi-labile DOP remineralisation"),
        decay("dopl_remineralisation", "DOPl", "kappa_l", "DIP", "labile DOP remineralisation"),
        restoring("DIP", dip_mean),
    ]


def p_model(grid, npp_col_mgC_m2_d, dip_obs_gamma, dip_mean: float, *, sigma2: float = 0.0,
            pop_to: str = "DOPs", uptake: str = "w19", parameters: ParameterSet | None = None) -> Model:
    """Declare the P model on ``grid``.

    ``npp_col_mgC_m2_d``: (nlat, nlon) NPP (mg C m-2 d-1); ``dip_obs_gamma``: the phosphate
    climatology in the uptake (mmol m-3); ``dip_mean``: volume-weighted mean observed DIP
    (mmol m-3) that the restoring term holds.
    """
    if pop_to not in ("DOPs", "DIP"):
        raise InputError(f"pop_to must be 'DOPs' (paper) or 'DIP' (BGC), got '{pop_to}'")
    def build_fields():
        return uptake_field_dict(*uptake_fields(grid, npp_col_mgC_m2_d, dip_obs_gamma, uptake))

    fields = build_fields()
    params = parameters.copy() if parameters is not None else p_parameters(sigma2)
    if parameters is None:
        params.set(sigma2=sigma2)

    def martin_scale(p, f):
        # F(b) = kappa_p/b * F_unit: the scale depends on b (and kappa_p, fixed)
        return p["kappa_p"] / p["b"]

    tracers = [Tracer("DIP", "mmol m-3", "T", description="dissolved inorganic phosphorus"),
               Tracer("POP", "mmol m-3", "sinking", sinking="martin", description="particulate organic P"),
               Tracer("DOPs", "mmol m-3", "T", description="semi-labile dissolved organic P"),
               Tracer("DOPl", "mmol m-3", "T", eliminate=True, description="labile dissolved organic P")]
    sinking = {"martin": SinkingSpec(base=lambda g, rows=None: martin_operator(g, 1.0, 1.0, rows=rows),
                                     scale=martin_scale)}
    return Model("P", tracers, params, sinking=sinking, fields=fields, fields_factory=build_fields,
                 description="4-tracer P cycle (Wu et al. 2025 §2.2)",
                 variant={"pop_to": pop_to, "uptake": uptake, "dip_mean": dip_mean},
                 processes=p_processes(dip_mean, pop_to))
