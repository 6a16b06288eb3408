"""The joint P-C-O model of Wu et al. (2025) (spec §2.4, §3): the P cycle's processes in their BGC
variant, plus the carbon (:mod:`.carbon`) and oxygen (:mod:`.oxygen`) processes.

Eleven tracers (units mmol m-3):

* P (BGC ``eqPcycle.m`` variant, spec §2.4): DIP, POP, DOP_s; POP -> DIP, no labile DOP (its
  production is represented in carbon), ``kappa_dP(Theta) = k_dP Q10_P^((Theta-30)/10)``, Martin
  exponent ``b_P = b_P0 + b_PT tau`` per column, uptake ``G = gamma DIP`` in the BGC form;
* C (spec §3.2): DIC, POC, DOC_s, PIC, ALK, DOC_l, DOC_r;
* O (spec §3.5): O2.

The model is nonlinear in DIC/ALK (gas exchange) and O2 (switch): the generic Newton solver
solves it, and every derivative (including the carbonate chemistry through the implicit H+) is
derived by :mod:`bcp_hpc.models.ad2`.  21 optimised parameters in the code's order (spec §4.2).

Variant switches (spec §8): ``labile=False`` is the first-stage model without labile production
(``N_sat`` replaced by ``P_C`` in DIC, ALK and O2, DOC_l kept at zero); ``rho`` 1024.5
(reoptNature, default) or 1025.
"""
from __future__ import annotations

import numpy as np

from ...constants import SECONDS_PER_DAY, SECONDS_PER_YEAR
from ...errors import InputError
from ...models import ad2, carbonate
from ...models.base import Model, SinkingSpec, Tracer
from ...models.parameters import Parameter, ParameterSet
from ...operators.sinking import martin_operator, pic_operator
from ..phosphorus.processes import decay, restoring, uptake
from .carbon import carbon_processes
from .fields import joint_fields
from .oxygen import RESPIRATION_SWITCH, oxygen_processes

PCO2_ATM_UATM = 277.9514          #: pre-industrial atmospheric pCO2 (uatm), OCMIP-2 1765 value
ALK_MEAN = 2415.0                 #: mmol m-3, restoring target when no ALK observations are given
S_DIC = 1980.0                    #: mmol m-3, surface mean DIC for the virtual flux
S_ALK = 2365.0                    #: mmol m-3, surface mean ALK for the virtual flux

TRACERS = ("DIP", "POP", "DOPs", "DIC", "POC", "DOCs", "PIC", "ALK", "DOCl", "DOCr", "O2")


def joint_parameters() -> ParameterSet:
    """The 21 optimised parameters (code order, spec §4.2) and the fixed constants."""
    yr = SECONDS_PER_YEAR
    P = Parameter
    return ParameterSet([
        P("sigP", 0.35, "1", "fraction of P uptake to DOP_s (rest to POP)", True, "log", bounds=(1e-4, 1.0)),
        P("Q10P", 2.28, "1", "temperature sensitivity of DOP_s remineralisation", True, "log", bounds=(0.1, 20.0)),
        P("kdP", 1.86e-8, "s-1", "DOP_s remineralisation rate at 30 degC", True, "log", bounds=(1e-12, 1e-5)),
        P("bP_T", 0.319, "1", "slope of the POP Martin exponent against tau", True, "none", bounds=(-5.0, 5.0)),
        P("bP", 0.770, "1", "intercept of the POP Martin exponent", True, "log", bounds=(0.05, 5.0)),
        P("alpha", 2.45e-8, "s-1", "uptake scaling (BGC form, N in mmol P m-3 yr-1)", True, "log", bounds=(1e-14, 1e-3)),
        P("beta", 0.45, "1", "NPP exponent of the uptake", True, "log", bounds=(1e-3, 5.0)),
        P("sigC", 0.09, "1", "fraction of model C production to DOC_s (rest to POC)", True, "log", bounds=(1e-4, 1.0)),
        P("kru", 5.74e-12, "s-1", "DOC_r removal rate, layers 1-2", True, "log", bounds=(1e-16, 1e-6)),
        P("krd", 2.99e-12, "s-1", "DOC_r removal rate, layers >= 3", True, "log", bounds=(1e-16, 1e-6)),
        P("etau", 0.98, "1", "fraction of DOC_s degradation to DIC (1 - eta to DOC_r)", True, "log", bounds=(1e-3, 1.0)),
        P("bC_T", 0.957, "1", "slope of the POC Martin exponent against tau", True, "none", bounds=(-5.0, 5.0)),
        P("bC", 0.65, "1", "intercept of the POC Martin exponent", True, "log", bounds=(0.05, 5.0)),
        P("d", 4550.0, "m", "PIC dissolution length scale", True, "log", bounds=(10.0, 1e6)),
        P("Q10C", 1.05, "1", "temperature sensitivity of DOC_s degradation", True, "log", bounds=(0.1, 20.0)),
        P("kdC", 5.42e-9, "s-1", "DOC_s degradation rate at 30 degC", True, "log", bounds=(1e-13, 1e-5)),
        P("R_Si", 0.10, "1", "silicate coefficient of PIC:POC", True, "none", bounds=(-10.0, 10.0)),
        P("rR", 0.0234, "1", "baseline PIC:POC ratio", True, "log", bounds=(1e-6, 10.0)),
        P("cc", 8.38e-4, "m3 mmol-1", "slope of P:C against PO4", True, "log", bounds=(1e-8, 1.0)),
        P("dd", 8.83e-3, "1", "intercept of P:C", True, "log", bounds=(1e-6, 1.0)),
        P("rO2C", 1.77, "mol mol-1", "O2 produced/consumed per C", True, "log", bounds=(0.1, 10.0)),
        P("kappa_p", 1.0 / (30 * SECONDS_PER_DAY), "s-1", "POP and POC dissolution rate (1/30 d)", bounds=(1e-10, 1e-3)),
        P("kappa_l", 1.0 / (12 * 3600.0), "s-1", "labile DOC remineralisation rate (1/12 h)", bounds=(1e-9, 1e-2)),
        P("kappa_pic", 1.0 / (30 * SECONDS_PER_DAY), "s-1", "PIC dissolution rate (1/30 d)", bounds=(1e-10, 1e-3)),
        P("kappa_g", 1.0 / (1e6 * yr), "s-1", "geological restoring rate (1/1 Myr)", bounds=(1e-20, 1e-6)),
        P("pco2_atm", PCO2_ATM_UATM, "uatm", "atmospheric pCO2 (pre-industrial)", bounds=(1.0, 5000.0)),
        P("rho", 1024.5, "kg m-3", "seawater density in the CO2 flux", bounds=(1000.0, 1100.0)),
    ])


def phosphorus_processes(dip_mean: float) -> list:
    """The P cycle's processes in the BGC variant of the joint model (spec §2.4)."""
    return [
        uptake({"DIP": -1, "POP": lambda p, f: 1.0 - p["sigP"], "DOPs": "sigP"}),
        decay("dops_remineralisation", "DOPs", lambda p, f: p["kdP"] * ad2.exp(ad2.log(p["Q10P"]) * f["theta_q"]),
              "DIP", "DOP_s remineralisation, Q10 temperature dependence"),
        decay("pop_dissolution", "POP", "kappa_p", "DIP", "POP dissolution to DIP (BGC code)"),
        restoring("DIP", dip_mean),
    ]


def joint_model(world, npp_col_mgC_m2_d, dip_mean: float, *, alk_mean: float = ALK_MEAN,
                s_dic: float = S_DIC, s_alk: float = S_ALK, labile: bool = True,
                parameters: ParameterSet | None = None, po4_obs: np.ndarray | None = None,
                borate: str = "v1.01", uptake_pc: str = "reoptNature") -> Model:
    """Declare the joint P-C-O model on ``world``.

    ``dip_mean``, ``alk_mean``: volume means (mmol m-3) the geological restoring holds;
    ``s_dic``, ``s_alk``: surface means (mmol m-3) of the virtual fluxes (spec §3.4); ``borate``:
    total borate of the carbonate chemistry (:data:`bcp_hpc.models.carbonate.BORATE`);
    ``uptake_pc``: the P:C inside the uptake's power (:data:`.fields.UPTAKE_PC`)."""
    if borate not in carbonate.BORATE:
        raise InputError(f"borate must be one of {sorted(carbonate.BORATE)}, got {borate!r}", variable="borate")
    def build_fields():
        return joint_fields(world, npp_col_mgC_m2_d, po4_obs=po4_obs, uptake_pc=uptake_pc)

    fields = build_fields()
    params = parameters.copy() if parameters is not None else joint_parameters()
    missing = [q.name for q in joint_parameters() if q.name not in params]
    if missing:
        raise InputError(f"joint model parameters missing: {missing}")
    chem_cache = {}

    def chemistry(idx, f):
        # keyed on the surface inputs themselves: evaluations come in chunks of boxes
        key = hash(b"".join(f[k][idx].tobytes() for k in ("temp_surface", "salt_surface", "po4_surface",
                                                            "si_surface", "pressure_dbar")))
        if key not in chem_cache:
            if len(chem_cache) > 256:
                chem_cache.clear()
            chem_cache[key] = carbonate.constants(f["temp_surface"][idx], f["salt_surface"][idx],
                                                  f["po4_surface"][idx], f["si_surface"][idx], f["pressure_dbar"][idx],
                                                  borate=borate)
        return chem_cache[key]

    processes = (phosphorus_processes(dip_mean) + carbon_processes(labile, chemistry, float(s_dic), float(s_alk),
                                                                   alk_mean) + oxygen_processes())
    tracers = [Tracer("DIP", "mmol m-3", "T", description="dissolved inorganic phosphorus"),
               Tracer("POP", "mmol m-3", "sinking", sinking="martin_P", description="particulate organic P"),
               Tracer("DOPs", "mmol m-3", "T", description="semi-labile dissolved organic P"),
               Tracer("DIC", "mmol m-3", "T", description="dissolved inorganic carbon"),
               Tracer("POC", "mmol m-3", "sinking", sinking="martin_C", description="particulate organic C"),
               Tracer("DOCs", "mmol m-3", "T", description="semi-labile dissolved organic C"),
               Tracer("PIC", "mmol m-3", "sinking", sinking="pic", description="particulate inorganic C"),
               Tracer("ALK", "mmol m-3", "T", description="total alkalinity"),
               Tracer("DOCl", "mmol m-3", "T", description="labile dissolved organic C"),
               Tracer("DOCr", "mmol m-3", "T", description="refractory dissolved organic C"),
               Tracer("O2", "mmol m-3", "T", switch=RESPIRATION_SWITCH,
                      description="dissolved oxygen")]
    unit_martin = lambda g, rows=None: martin_operator(g, 1.0, 1.0, rows=rows)  # noqa: E731
    sinking = {
        "martin_P": SinkingSpec(base=unit_martin, scale=lambda p, f: p["kappa_p"] / (p["bP"] + p["bP_T"] * f["tau"])),
        "martin_C": SinkingSpec(base=unit_martin, scale=lambda p, f: p["kappa_p"] / (p["bC"] + p["bC_T"] * f["tau"])),
        "pic": SinkingSpec(base=lambda g, rows=None: pic_operator(g, 1.0, 1.0, rows=rows),
                           scale=lambda p, f: p["kappa_pic"] * p["d"]),
    }
    initial = {"DIP": dip_mean, "DIC": s_dic + 100.0, "ALK": alk_mean, "O2": 200.0}
    return Model("PCO", tracers, params, sinking=sinking, fields=fields, fields_factory=build_fields,
                 description="joint P-C-O model (Wu et al. 2025 §2.3; BGC eqPcycle/eqCcycle_v2/eqOcycle_v2)",
                 variant={"pop_to": "DIP", "uptake": "bgc", "uptake_pc": uptake_pc, "labile": labile,
                          "borate": borate, "dip_mean": dip_mean, "alk_mean": alk_mean, "s_dic": s_dic,
                          "s_alk": s_alk, "rho": params["rho"].value},
                 initial=initial, processes=processes, observables={"DOC": {"DOCs": 1.0, "DOCl": 1.0, "DOCr": 1.0}})

