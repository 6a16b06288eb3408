"""Carbon and alkalinity processes of the joint model (spec §3.2-3.4), reusable by other carbon cycles.

Organic carbon is produced at the P uptake times a C:P ``1/(c_c PO4 + d_d)``; the satellite
production ``N_sat`` is what DIC loses, the difference ``N_sat - P_C`` becomes labile DOC (spec
§8.13: not clipped).  PIC:POC is ``R_Si Y + r_R`` in the euphotic zone.  Alkalinity follows
nitrate (``R_N`` per C) and carbonate (2 per PIC).  Rates in mmol C m-3 s-1.
"""
from __future__ import annotations

import numpy as np

from ...models import ad2, carbonate
from ...models.processes import Process

R_N = 18.0 / 106.0                #: alkalinity per mol organic C (nitrate uptake/remineralisation)


def carbon_to_phosphorus(p, f):
    """Production C:P ``1/(c_c PO4 + d_d)`` (mol C / mol P)."""
    return 1.0 / (p["cc"] * f["po4"] + p["dd"])


def degradation_rate(p, f):
    """DOC_s degradation rate ``k_dC Q10_C^((Theta - 30)/10)`` (s^-1)."""
    return p["kdC"] * ad2.exp(ad2.log(p["Q10C"]) * f["theta_q"])


def removal_rate(p, f):
    """Refractory DOC removal rate: ``k_ru`` in layers 1-2, ``k_rd`` below (s^-1)."""
    return p["kru"] * f["upper"] + p["krd"] * f["lower"]


def organic_remineralisation(r: dict, p) -> object:
    """Organic carbon returned to DIC per box (mmol C m-3 s-1): the sum of the remineralisation
    processes' rates, DOC_s only in its ``eta`` fraction."""
    return (r["poc_remineralisation"] + p["etau"] * r["docs_degradation"] + r["docr_removal"]
            + r["docl_remineralisation"])


def carbon_processes(labile: bool, chemistry, s_dic: float, s_alk: float, alk_mean: float) -> list:
    """Processes of DIC, POC, DOC_s, PIC, ALK, DOC_l, DOC_r; ``chemistry(idx, f)`` gives the carbonate
    constants of the surface boxes ``idx`` (cached by the caller).  Needs the P ``uptake`` process."""
    procs = [
        Process("organic_production", lambda c, p, f, r: carbon_to_phosphorus(p, f) * r["uptake"],
                {"POC": lambda p, f: 1.0 - p["sigC"], "DOCs": "sigC"},
                description="model organic C production P_C = C:P x P uptake (to POC and DOC_s)"),
        Process("carbon_fixation", (lambda c, p, f, r: f["nsat"]) if labile
                else (lambda c, p, f, r: r["organic_production"]), {"DIC": -1, "ALK": R_N},
                description="DIC taken up by production (satellite NPP; P_C without the labile pool)"),
    ]
    if labile:
        procs.append(Process("labile_production", lambda c, p, f, r: f["nsat"] - r["organic_production"],
                             {"DOCl": 1}, description="labile DOC production N_sat - P_C (not clipped)"))
    procs += [
        Process("calcification",
                lambda c, p, f, r: (1.0 - p["sigC"]) * ((p["R_Si"] * f["Y"] + p["rR"]) * f["upper"])
                * r["organic_production"],
                {"DIC": -1, "PIC": 1, "ALK": -2}, description="CaCO3 production, PIC:POC = R_Si Y + r_R"),
        Process("poc_remineralisation", lambda c, p, f, r: p["kappa_p"] * c["POC"],
                {"POC": -1, "DIC": 1, "ALK": -R_N}),
        Process("docs_degradation", lambda c, p, f, r: degradation_rate(p, f) * c["DOCs"],
                {"DOCs": -1, "DIC": "etau", "DOCr": lambda p, f: 1.0 - p["etau"], "ALK": lambda p, f: -R_N * p["etau"]},
                description="DOC_s degradation, eta to DIC, 1 - eta to DOC_r"),
        Process("docr_removal", lambda c, p, f, r: removal_rate(p, f) * c["DOCr"], {"DOCr": -1, "DIC": 1, "ALK": -R_N}),
        Process("docl_remineralisation", lambda c, p, f, r: p["kappa_l"] * c["DOCl"],
                {"DOCl": -1, "DIC": 1, "ALK": -R_N}),
        Process("pic_dissolution", lambda c, p, f, r: p["kappa_pic"] * c["PIC"], {"PIC": -1, "DIC": 1, "ALK": 2}),
        co2_gas_exchange(chemistry),
        Process("dic_virtual_flux", lambda c, p, f, r: -f["pme"] * s_dic, {"DIC": 1},
                description="virtual flux -E s_DIC of evaporation minus precipitation"),
        Process("alk_virtual_flux", lambda c, p, f, r: -f["pme"] * s_alk, {"ALK": 1}),
        Process("alk_restoring", lambda c, p, f, r: p["kappa_g"] * (alk_mean - c["ALK"]), {"ALK": 1},
                description=f"geological restoring of ALK to {alk_mean:g} mmol m-3"),
    ]
    return procs


def co2_gas_exchange(chemistry) -> Process:
    """Air-sea CO2 flux into the surface boxes ``k_w (K0 pCO2_atm - CO2*) rho / 1000`` (spec §3.3),
    CO2* from DIC and ALK through the implicit H+ (:mod:`bcp_hpc.models.carbonate`)."""
    def rate(c, p, f, r):
        n = f["N"].shape[0]
        idx = np.flatnonzero(f["is_surface"] > 0)
        chem = chemistry(idx, f)
        co2 = carbonate.co2_star(ad2.take(c["DIC"], idx), ad2.take(c["ALK"], idx), chem)
        return ad2.scatter((chem.K0 * p["pco2_atm"] - co2) * (ad2.take(f["k_co2"], idx) * p["rho"] / 1000.0), idx, n)
    return Process("co2_gas_exchange", rate, {"DIC": 1}, description="air-sea CO2 exchange (positive into the ocean)")
