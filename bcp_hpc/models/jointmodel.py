"""The joint P-C-O model of Wu et al. (2025) (spec §2.4, §3), as one model declaration.

Eleven tracers (units mmol m-3):

* P (BGC ``eqPcycle.m`` variant, spec §2.4): DIP, POP, DOP_s; POP -> DIP, no labile DOP
  (its production is represented in carbon), ``kappa_dP(Theta) = k_dP Q10_P^((Theta-30)/10)``,
  Martin exponent ``b_P = b_P0 + b_PT tau`` per column, uptake ``G = gamma DIP`` in the BGC form;
* C (spec §3.2): DIC, POC, DOC_s, PIC, ALK, DOC_l, DOC_r with C:P ``1/(c_c PO4 + d_d)``, labile
  production ``N_sat - P_C`` (not clipped, §8.13), PIC:POC ``R_Si Y + r_R``, air-sea CO2 exchange
  with carbonate chemistry (:mod:`.carbonate`), virtual fluxes ``-E s_bar``;
* O (spec §3.5): O2 with gas exchange to Garcia-Gordon saturation and the respiration switch
  ``0.5 + 0.5 tanh(O2 - 5)``.

The model is nonlinear in DIC/ALK (gas exchange) and O2 (switch): the generic Newton solver of
:mod:`bcp_hpc.solvers.steady` solves it, and every derivative (Jacobian blocks, parameter
derivatives, second derivatives, including the carbonate chemistry through the implicit H+) is
derived by :mod:`.ad2`.  21 optimised parameters in the code's order (spec §4.2).

Variant switches (spec §8): ``labile=False`` is the first-stage model without labile production
(``N_sat`` replaced by ``P_C`` in DIC, ALK and O2, DOC_l kept at zero); ``rho`` 1024.5 (reoptNature,
default) or 1025.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..operators.sinking import martin_operator, pic_operator
from . import ad2, carbonate
from .base import Model, SinkingSpec, Tracer
from .parameters import Parameter, ParameterSet
from .pmodel import MG_C_PER_MMOL, SECONDS_PER_DAY, SECONDS_PER_YEAR, uptake_fields

PCO2_ATM_UATM = 277.9514          #: pre-industrial atmospheric pCO2 (uatm), OCMIP-2 1765 value
R_N = 18.0 / 106.0                #: alkalinity per mol organic C (nitrate uptake/remineralisation)
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


def normalised_temperature(grid, theta: np.ndarray) -> np.ndarray:
    """Column value tau (spec §1.4) broadcast to every box: mean over layers 1-3 of
    ``(Theta - Theta_min + 1) / (Theta_max - Theta_min)``."""
    th = np.maximum(np.asarray(theta, dtype=float), -2.0)
    tn = (th - th.min() + 1.0) / (th.max() - th.min())
    col = np.zeros(grid.shape[:2])
    cnt = np.zeros(grid.shape[:2])
    top = grid.box_k < 3
    np.add.at(col, (grid.box_ilat[top], grid.box_ilon[top]), tn[top])
    np.add.at(cnt, (grid.box_ilat[top], grid.box_ilon[top]), 1.0)
    tau2d = col / np.maximum(cnt, 1.0)
    return tau2d[grid.box_ilat, grid.box_ilon]


def joint_fields(world, npp_col_mgC_m2_d: np.ndarray, *, po4_obs: np.ndarray | None = None) -> dict:
    """Fixed fields of the joint model (natural-order n-vectors; surface quantities are 0 below)."""
    grid = world.grid
    n = grid.nwet
    theta = np.maximum(np.asarray(world.temperature, dtype=float), -2.0)
    po4 = np.maximum(np.asarray(world.dip_gamma if po4_obs is None else po4_obs, dtype=float), 0.05)
    N, h, inv_dip = uptake_fields(grid, npp_col_mgC_m2_d, po4, "bgc")
    ez = grid.euphotic
    surf = grid.box_k == 0
    npp = np.nan_to_num(np.asarray(npp_col_mgC_m2_d, dtype=float), nan=0.0)
    npp_box = npp[grid.box_ilat, grid.box_ilon]
    nsat = np.where(ez, npp_box / MG_C_PER_MMOL / SECONDS_PER_DAY / (2.0 * grid.box_dz), 0.0)   # mmol C m-3 s-1
    si = np.asarray(world.forcing("silicate"), dtype=float)
    sal = np.asarray(world.forcing("salinity"), dtype=float)
    if np.any(~np.isfinite(si[ez])) or np.any(~np.isfinite(sal[surf])):
        raise InputError("silicate or salinity missing in euphotic boxes", variable="silicate/salinity")
    y = np.zeros(n)
    y[ez] = (si[ez] - si[ez].min()) / max(si[ez].max() - si[ez].min(), 1e-30)
    kw2d = np.asarray(world.forcing("piston_velocity"), dtype=float)
    slp2d = np.asarray(world.forcing("sea_level_pressure"), dtype=float)
    kw = np.where(surf, np.nan_to_num(kw2d[grid.box_ilat, grid.box_ilon]), 0.0)
    patm = np.where(surf, np.nan_to_num(slp2d[grid.box_ilat, grid.box_ilon], nan=1.0), 1.0)
    t_s = np.where(surf, theta, 20.0)
    s_s = np.where(surf, sal, 35.0)
    pme = np.where(surf, np.asarray(world.forcing("pme"), dtype=float), 0.0)
    dz1 = grid.dz[0]
    return {
        "N": N, "logN": np.log(np.where(N > 0, N, 1.0)), "has_N": (N > 0).astype(float), "h_inv_dip": h * inv_dip,
        "theta_q": (theta - 30.0) / 10.0, "tau": normalised_temperature(grid, theta),
        "po4": po4, "nsat": nsat, "Y": y, "upper": ez.astype(float), "lower": (~ez).astype(float),
        "is_surface": surf.astype(float), "pme": pme,
        "temp_surface": t_s, "salt_surface": s_s,
        "si_surface": np.where(surf, np.nan_to_num(si), 0.0), "po4_surface": np.where(surf, po4, 0.0),
        "pressure_dbar": np.full(n, grid.zt[0]),     # first layer centre (m ~ dbar), spec §3.3
        "k_co2": np.where(surf, kw / dz1 * np.sqrt(660.0 / carbonate.schmidt_co2(t_s)), 0.0),
        "k_o2": np.where(surf, kw / dz1 * np.sqrt(660.0 / carbonate.schmidt_o2(t_s)), 0.0),
        "o2_sat": np.where(surf, 1000.0 * carbonate.o2_saturation(t_s, s_s) * patm, 0.0),
    }


def joint_model(world, npp_col_mgC_m2_d, dip_mean: float, *, alk_mean: float = ALK_MEAN,
                s_dic: float = S_DIC, s_alk: float = S_ALK, labile: bool = True,
                parameters: ParameterSet | None = None, po4_obs: np.ndarray | None = None) -> Model:
    """Declare the joint P-C-O model on ``world``.

    ``dip_mean``, ``alk_mean``: volume means (mmol m-3) the geological restoring holds;
    ``s_dic``, ``s_alk``: surface means (mmol m-3) of the virtual fluxes (spec §3.4)."""
    sbar_dic, sbar_alk = float(s_dic), float(s_alk)
    fields = joint_fields(world, npp_col_mgC_m2_d, po4_obs=po4_obs)
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
                                                  f["po4_surface"][idx], f["si_surface"][idx], f["pressure_dbar"][idx])
        return chem_cache[key]

    def local_terms(c, p, f):
        n = f["N"].shape[0]
        dip, pop, dops = c["DIP"], c["POP"], c["DOPs"]
        # ---- P (spec §2.4)
        npow = ad2.exp(p["beta"] * f["logN"]) * f["has_N"]
        G = p["alpha"] * npow * f["h_inv_dip"] * dip        # mmol P m-3 s-1
        kdp = p["kdP"] * ad2.exp(ad2.log(p["Q10P"]) * f["theta_q"])
        s_dip = -G + kdp * dops + p["kappa_p"] * pop + p["kappa_g"] * (dip_mean - dip)
        s_pop = (1.0 - p["sigP"]) * G - p["kappa_p"] * pop
        s_dops = p["sigP"] * G - kdp * dops
        # ---- C (spec §3.2)
        cp = 1.0 / (p["cc"] * f["po4"] + p["dd"])                                # mol C / mol P
        PC = cp * G                                                              # model C production
        R = (p["R_Si"] * f["Y"] + p["rR"]) * f["upper"]
        phi = 1.0 - p["sigC"]
        kC = p["kdC"] * ad2.exp(ad2.log(p["Q10C"]) * f["theta_q"])
        kr = p["kru"] * f["upper"] + p["krd"] * f["lower"]
        nsat = f["nsat"] if labile else PC
        remin = p["kappa_p"] * c["POC"] + p["etau"] * kC * c["DOCs"] + kr * c["DOCr"] + p["kappa_l"] * c["DOCl"]
        caco3 = phi * R * PC
        idx = np.flatnonzero(f["is_surface"] > 0)
        chem = chemistry(idx, f)
        co2 = carbonate.co2_star(ad2.take(c["DIC"], idx), ad2.take(c["ALK"], idx), chem)
        jg = ad2.scatter((chem.K0 * p["pco2_atm"] - co2) * (ad2.take(f["k_co2"], idx) * p["rho"] / 1000.0), idx, n)
        s_dic = (jg - f["pme"] * sbar_dic + remin + p["kappa_pic"] * c["PIC"] - nsat - caco3)
        s_poc = phi * PC - p["kappa_p"] * c["POC"]
        s_docs = p["sigC"] * PC - kC * c["DOCs"]
        s_pic = caco3 - p["kappa_pic"] * c["PIC"]
        s_alk = (p["kappa_g"] * (alk_mean - c["ALK"]) - 2.0 * caco3 + 2.0 * p["kappa_pic"] * c["PIC"]
                 + R_N * (nsat - remin) - f["pme"] * sbar_alk)
        s_docl = (f["nsat"] - PC if labile else 0.0 * PC) - p["kappa_l"] * c["DOCl"]
        s_docr = (1.0 - p["etau"]) * kC * c["DOCs"] - kr * c["DOCr"]
        # ---- O2 (spec §3.5)
        switch = 0.5 + 0.5 * ad2.tanh(c["O2"] - 5.0)
        s_o2 = f["k_o2"] * (f["o2_sat"] - c["O2"]) + p["rO2C"] * (nsat - switch * remin)
        return {"DIP": s_dip, "POP": s_pop, "DOPs": s_dops, "DIC": s_dic, "POC": s_poc, "DOCs": s_docs,
                "PIC": s_pic, "ALK": s_alk, "DOCl": s_docl, "DOCr": s_docr, "O2": s_o2}

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
               Tracer("O2", "mmol m-3", "T", positive=True, description="dissolved oxygen")]
    unit_martin = lambda g: martin_operator(g, 1.0, 1.0)
    sinking = {
        "martin_P": SinkingSpec(base=unit_martin, scale=lambda p, f: p["kappa_p"] / (p["bP"] + p["bP_T"] * f["tau"])),
        "martin_C": SinkingSpec(base=unit_martin, scale=lambda p, f: p["kappa_p"] / (p["bC"] + p["bC_T"] * f["tau"])),
        "pic": SinkingSpec(base=lambda g: pic_operator(g, 1.0, 1.0), scale=lambda p, f: p["kappa_pic"] * p["d"]),
    }
    initial = {"DIP": dip_mean, "DIC": s_dic + 100.0, "ALK": alk_mean, "O2": 200.0}
    return Model("PCO", tracers, params, local_terms, sinking, fields,
                 description="joint P-C-O model (Wu et al. 2025 §2.3; BGC eqPcycle/eqCcycle_v2/eqOcycle_v2)",
                 variant={"pop_to": "DIP", "uptake": "bgc", "labile": labile, "dip_mean": dip_mean,
                          "alk_mean": alk_mean, "s_dic": s_dic, "s_alk": s_alk, "rho": params["rho"].value},
                 initial=initial)


def model_production(model: Model, dip: np.ndarray) -> np.ndarray:
    """Model organic C production ``P_C = c G`` (mmol C m-3 s-1) per box at the current parameters."""
    f = model.fields
    p = {q.name: q.value for q in model.parameters}
    gamma = p["alpha"] * np.where(f["has_N"] > 0, np.exp(p["beta"] * f["logN"]), 0.0) * f["h_inv_dip"]
    return gamma * dip / (p["cc"] * f["po4"] + p["dd"])


def model_npp(model: Model, state_natural: np.ndarray, grid) -> dict:
    """Global model NPP, satellite NPP and DOC_l production (Pg C yr-1), spec §6.1 (joint: local C:P)."""
    f = model.fields
    pc = model_production(model, state_natural[model.tracer_names.index("DIP")])
    to_pg = SECONDS_PER_YEAR * 12.0 * 1e-18
    V = grid.box_volume
    npp_model = float((pc * V).sum() * to_pg)
    npp_sat = float((f["nsat"] * V).sum() * to_pg)
    return {"npp_model_pg_c_per_yr": npp_model, "npp_satellite_pg_c_per_yr": npp_sat,
            "docl_production_pg_c_per_yr": npp_sat - npp_model}
