"""The local source-minus-sink terms of the P and joint models written as single closures, straight
from spec §2.2, §2.4 and §3 (as the package wrote them before models were declared as processes).
They are the independent reference of ``test_same_results``."""
import numpy as np

from bcp_hpc.models import ad2, carbonate

R_N = 18.0 / 106.0


def p_reference(dip_mean, pop_to):
    def local_terms(c, p, f):
        dip, pop, dops, dopl = c["DIP"], c["POP"], c["DOPs"], c["DOPl"]
        npow = ad2.exp(p["beta"] * f["logN"]) * f["has_N"]
        J = p["alpha"] * npow * f["h_inv_dip"] * dip
        remin_pop = p["kappa_p"] * pop
        s_dip = -J + p["kappa_d"] * dops + p["kappa_l"] * dopl + p["kappa_g"] * (dip_mean - dip)
        s_pop = (1.0 - p["sigma1"] - p["sigma2"]) * J - remin_pop
        s_dops = p["sigma1"] * J - p["kappa_d"] * dops
        s_dopl = p["sigma2"] * J - p["kappa_l"] * dopl
        if pop_to == "DOPs":
            s_dops = s_dops + remin_pop
        else:
            s_dip = s_dip + remin_pop
        return {"DIP": s_dip, "POP": s_pop, "DOPs": s_dops, "DOPl": s_dopl}
    return local_terms


def joint_reference(model, dip_mean, labile):
    v = model.variant
    alk_mean, sbar_dic, sbar_alk = v["alk_mean"], v["s_dic"], v["s_alk"]

    def local_terms(c, p, f):
        n = f["N"].shape[0]
        dip, pop, dops = c["DIP"], c["POP"], c["DOPs"]
        npow = ad2.exp(p["beta"] * f["logN"]) * f["has_N"]
        G = p["alpha"] * npow * f["h_inv_dip"] * dip
        kdp = p["kdP"] * ad2.exp(ad2.log(p["Q10P"]) * f["theta_q"])
        s_dip = -G + kdp * dops + p["kappa_p"] * pop + p["kappa_g"] * (dip_mean - dip)
        s_pop = (1.0 - p["sigP"]) * G - p["kappa_p"] * pop
        s_dops = p["sigP"] * G - kdp * dops
        cp = 1.0 / (p["cc"] * f["po4"] + p["dd"])
        PC = cp * G
        R = (p["R_Si"] * f["Y"] + p["rR"]) * f["upper"]
        phi = 1.0 - p["sigC"]
        kC = p["kdC"] * ad2.exp(ad2.log(p["Q10C"]) * f["theta_q"])
        kr = p["kru"] * f["upper"] + p["krd"] * f["lower"]
        nsat = f["nsat"] if labile else PC
        remin = p["kappa_p"] * c["POC"] + p["etau"] * kC * c["DOCs"] + kr * c["DOCr"] + p["kappa_l"] * c["DOCl"]
        caco3 = phi * R * PC
        idx = np.flatnonzero(f["is_surface"] > 0)
        chem = carbonate.constants(f["temp_surface"][idx], f["salt_surface"][idx], f["po4_surface"][idx],
                                   f["si_surface"][idx], f["pressure_dbar"][idx], borate=v["borate"])
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
        switch = 0.5 + 0.5 * ad2.tanh(c["O2"] - 5.0)
        s_o2 = f["k_o2"] * (f["o2_sat"] - c["O2"]) + p["rO2C"] * (nsat - switch * remin)
        return {"DIP": s_dip, "POP": s_pop, "DOPs": s_dops, "DIC": s_dic, "POC": s_poc, "DOCs": s_docs,
                "PIC": s_pic, "ALK": s_alk, "DOCl": s_docl, "DOCr": s_docr, "O2": s_o2}
    return local_terms
