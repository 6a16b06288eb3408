"""Seawater carbonate chemistry for the air-sea CO2 flux (spec §3.3), CO2SYS-equivalent.

Input pair total alkalinity + DIC (CO2SYS types 1 and 2), total pH scale (option 1),
K1/K2 of Mehrbach et al. (1973) refit by Dickson & Millero (1987) (option 4), KSO4 of
Dickson (1990) (option 1), Uppstroem (1974) total borate (in CO2SYS v1.01's form by default,
:data:`BORATE`), KB of Dickson (1990), KW of
Millero (1995), KP1-3 and KSi of Yao & Millero (1995) / Millero (1995), KF of Dickson &
Riley (1979), K0 of Weiss (1974) with the Weiss (1974) fugacity factor at 1 atm, pressure
corrections of Millero (1995) for every dissociation constant.  Concentrations are in
umol kg-1 (the model passes mmol m-3 unchanged, as the spec's code does, §8.10).

The hydrogen-ion concentration solves the alkalinity equation ``R(H) = 0``.  It is found by a
safeguarded Newton iteration on floats; derivatives with respect to DIC and ALK (first and
second order, for the model's Jacobian and sensitivities) come from two further Newton steps
carried out in :mod:`.ad2` arithmetic with the exact float slope ``R_H`` (complex step):
by the implicit function theorem one step makes the first derivatives exact and the second
step the second derivatives (see :func:`hydrogen_ion`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ad2
from .ad2 import AD2

R_GAS = 83.1451          #: cm3 bar mol-1 K-1 (CO2SYS v1.01)
#: total borate (mol kg-1) against salinity: CO2SYS v1.01 computes Uppstroem's ratio from its parts,
#: (0.000232 / 10.811) (S / 1.80655) = 4.1576e-4 S/35 (the group's code, default); "rounded" is the
#: textbook 4.157e-4 S/35 that PyCO2SYS also uses (1.4e-4 relative lower)
BORATE = {"v1.01": lambda s: (0.000232 / 10.811) * (s / 1.80655), "rounded": lambda s: 0.0004157 * s / 35.0}


@dataclass
class CarbonateConstants:
    """Equilibrium constants (mol kg-SW-1, total pH scale) and totals for a set of boxes."""

    K0: np.ndarray       #: CO2 solubility times fugacity factor: [CO2*]/pCO2, mol kg-1 atm-1
    K1: np.ndarray
    K2: np.ndarray
    KB: np.ndarray
    KW: np.ndarray
    KP1: np.ndarray
    KP2: np.ndarray
    KP3: np.ndarray
    KSi: np.ndarray
    KS: np.ndarray       #: free scale
    KF: np.ndarray       #: free scale
    TB: np.ndarray
    TS: np.ndarray
    TF: np.ndarray
    TP: np.ndarray       #: total phosphate, mol kg-1
    TSi: np.ndarray      #: total silicate, mol kg-1
    fugacity: np.ndarray  #: fugacity factor fCO2/pCO2 at 1 atm (Weiss 1974); K0 / fugacity is Weiss's K0


def _pressure_factor(dv_coeffs, dk_coeffs, tc, tk, pbar):
    """``K(P)/K(0) = exp(-dV P / RT + 0.5 dk P^2 / RT)`` (Millero 1995)."""
    dv = dv_coeffs[0] + dv_coeffs[1] * tc + dv_coeffs[2] * tc ** 2
    dk = (dk_coeffs[0] + dk_coeffs[1] * tc) / 1000.0
    return np.exp((-dv + 0.5 * dk * pbar) * pbar / (R_GAS * tk))


def constants(temp_c, salinity, phosphate=0.0, silicate=0.0, pressure_dbar=0.0,
              borate: str = "v1.01") -> CarbonateConstants:
    """Constants at temperature (deg C), salinity, total phosphate and silicate (umol kg-1), pressure (dbar);
    total borate by :data:`BORATE` ``[borate]``."""
    tc = np.asarray(temp_c, dtype=float)
    s = np.broadcast_to(np.asarray(salinity, dtype=float), tc.shape)
    tk = tc + 273.15
    ltk = np.log(tk)
    sqs = np.sqrt(s)
    pbar = np.asarray(pressure_dbar, dtype=float) / 10.0
    KS0, KF0, TS, TF = constants_free_scale(tc, s)
    if borate not in BORATE:
        raise ValueError(f"borate must be one of {sorted(BORATE)}, got {borate!r}")
    TB = BORATE[borate](s)
    ion = 19.924 * s / (1000.0 - 1.005 * s)
    salt = np.log(1.0 - 0.001005 * s)
    KS = KS0 * _pressure_factor((-18.03, 0.0466, 0.000316), (-4.53, 0.09), tc, tk, pbar)
    KF = KF0 * _pressure_factor((-9.78, -0.009, -0.000942), (-3.91, 0.054), tc, tk, pbar)
    sws_to_tot = (1.0 + TS / KS) / (1.0 + TS / KS + TF / KF)
    # K0 (Weiss 1974) and the fugacity factor at 1 atm
    tk100 = tk / 100.0
    K0 = np.exp(-60.2409 + 93.4517 / tk100 + 23.3585 * np.log(tk100)
                + s * (0.023517 - 0.023656 * tk100 + 0.0047036 * tk100 ** 2))
    delta = 57.7 - 0.118 * tk
    bvir = -1636.75 + 12.0408 * tk - 0.0327957 * tk ** 2 + 3.16528e-5 * tk ** 3
    fug = np.exp((bvir + 2.0 * delta) * 1.01325 / (R_GAS * tk))
    # K1, K2: Mehrbach refit by Dickson & Millero (1987), seawater scale
    pK1 = 3670.7 / tk - 62.008 + 9.7944 * ltk - 0.0118 * s + 0.000116 * s ** 2
    pK2 = 1394.7 / tk + 4.777 - 0.0184 * s + 0.000118 * s ** 2
    K1 = 10.0 ** -pK1 * _pressure_factor((-25.5, 0.1271, 0.0), (-3.08, 0.0877), tc, tk, pbar)
    K2 = 10.0 ** -pK2 * _pressure_factor((-15.82, -0.0219, 0.0), (1.13, -0.1475), tc, tk, pbar)
    # KB (Dickson 1990b) is on the total scale: to seawater scale for the pressure step
    lnKB = ((-8966.90 - 2890.53 * sqs - 77.942 * s + 1.728 * s * sqs - 0.0996 * s ** 2) / tk
            + 148.0248 + 137.1942 * sqs + 1.62142 * s + (-24.4344 - 25.085 * sqs - 0.2474 * s) * ltk
            + 0.053105 * sqs * tk)
    sws_to_tot0 = (1.0 + TS / KS0) / (1.0 + TS / KS0 + TF / KF0)
    KB = np.exp(lnKB) / sws_to_tot0 * _pressure_factor((-29.48, 0.1622, -0.002608), (-2.84, 0.0), tc, tk, pbar)
    # KW (Millero 1995), seawater scale
    lnKW = (148.9802 - 13847.26 / tk - 23.6521 * ltk + (-5.977 + 118.67 / tk + 1.0495 * ltk) * sqs - 0.01615 * s)
    KW = np.exp(lnKW) * _pressure_factor((-20.02, 0.1119, -0.001409), (-5.13, 0.0794), tc, tk, pbar)
    # phosphoric acid and silicic acid (Yao & Millero 1995), seawater scale
    KP1 = np.exp(-4576.752 / tk + 115.54 - 18.453 * ltk + (-106.736 / tk + 0.69171) * sqs
                 + (-0.65643 / tk - 0.01844) * s) * _pressure_factor((-14.51, 0.1211, -0.000321), (-2.67, 0.0427),
                                                                     tc, tk, pbar)
    KP2 = np.exp(-8814.715 / tk + 172.1033 - 27.927 * ltk + (-160.34 / tk + 1.3566) * sqs
                 + (0.37335 / tk - 0.05778) * s) * _pressure_factor((-23.12, 0.1758, -0.002647), (-5.15, 0.09),
                                                                    tc, tk, pbar)
    KP3 = np.exp(-3070.75 / tk - 18.126 + (17.27039 / tk + 2.81197) * sqs
                 + (-44.99486 / tk - 0.09984) * s) * _pressure_factor((-26.57, 0.2020, -0.003042), (-4.08, 0.0714),
                                                                     tc, tk, pbar)
    KSi = np.exp(-8904.2 / tk + 117.4 - 19.334 * ltk + (-458.79 / tk + 3.5913) * np.sqrt(ion)
                 + (188.74 / tk - 1.5998) * ion + (-12.1652 / tk + 0.07871) * ion ** 2 + salt) \
        * _pressure_factor((-29.48, 0.1622, -0.002608), (-2.84, 0.0), tc, tk, pbar)
    tot = sws_to_tot
    return CarbonateConstants(K0=K0 * fug, K1=K1 * tot, K2=K2 * tot, KB=KB * tot, KW=KW * tot,
                              KP1=KP1 * tot, KP2=KP2 * tot, KP3=KP3 * tot, KSi=KSi * tot, KS=KS, KF=KF,
                              TB=TB, TS=TS, TF=TF,
                              TP=np.broadcast_to(np.asarray(phosphate, float) * 1e-6, tc.shape).copy(),
                              TSi=np.broadcast_to(np.asarray(silicate, float) * 1e-6, tc.shape).copy(),
                              fugacity=fug)


def constants_free_scale(tc, s):
    """(KS, KF, TS, TF) at zero pressure, free scale: KSO4 of Dickson (1990a), KF of Dickson & Riley (1979)."""
    tk = tc + 273.15
    ltk = np.log(tk)
    ion = 19.924 * s / (1000.0 - 1.005 * s)
    salt = np.log(1.0 - 0.001005 * s)
    lnKS = (-4276.1 / tk + 141.328 - 23.093 * ltk + (-13856.0 / tk + 324.57 - 47.986 * ltk) * np.sqrt(ion)
            + (35474.0 / tk - 771.54 + 114.723 * ltk) * ion - 2698.0 / tk * ion ** 1.5 + 1776.0 / tk * ion ** 2)
    KS = np.exp(lnKS + salt)
    KF = np.exp(1590.2 / tk - 12.641 + 1.525 * np.sqrt(ion) + salt)
    TF = (0.000067 / 18.998) * (s / 1.80655)
    TS = (0.14 / 96.062) * (s / 1.80655)
    return KS, KF, TS, TF


def alkalinity_residual(H, dic, alk, k: CarbonateConstants):
    """``TA(H, DIC) - ALK`` in mol kg-1 (H total scale, mol kg-1; dic, alk in mol kg-1).

    Written with ``+ - * /`` only, so it evaluates on floats, complex numbers (complex-step
    slope) and :class:`~.ad2.AD2` values alike."""
    H2 = H * H
    den = H2 + k.K1 * H + k.K1 * k.K2
    carb = dic * (k.K1 * H + 2.0 * k.K1 * k.K2) / den
    borate = k.TB * k.KB / (k.KB + H)
    water = k.KW / H
    H3 = H2 * H
    phos = k.TP * (k.KP1 * k.KP2 * H + 2.0 * k.KP1 * k.KP2 * k.KP3 - H3) / (
        H3 + k.KP1 * H2 + k.KP1 * k.KP2 * H + k.KP1 * k.KP2 * k.KP3)
    sil = k.TSi * k.KSi / (k.KSi + H)
    free_to_tot = 1.0 + k.TS / k.KS
    hfree = H / free_to_tot
    hso4 = k.TS / (1.0 + k.KS / hfree)
    hf = k.TF / (1.0 + k.KF / hfree)
    return carb + borate + water + phos + sil - hfree - hso4 - hf - alk


def _slope(H, dic, alk, k):
    """``dR/dH`` by complex step (exact to round-off)."""
    step = 1e-30
    return np.imag(alkalinity_residual(H + 1j * step * H, dic, alk, k)) / (step * H)


def solve_hydrogen(dic, alk, k: CarbonateConstants, tol: float = 1e-14, max_iter: int = 60) -> np.ndarray:
    """H+ (mol kg-1, total scale) from DIC and ALK (mol kg-1, float arrays): Newton in H with a bisection
    safeguard on pH 2..12 (the residual decreases monotonically in H).  A Newton step that lands on the
    bracket's end is taken: at the root, rounding makes the residual's sign arbitrary and the step zero,
    and bisecting there would throw away quadratic convergence (about 30 iterations instead of 6)."""
    dic = np.asarray(dic, dtype=float)
    alk = np.asarray(alk, dtype=float)
    lo = np.full(dic.shape, 1e-12)
    hi = np.full(dic.shape, 1e-2)
    H = np.full(dic.shape, 1e-8)
    for _ in range(max_iter):
        r = alkalinity_residual(H, dic, alk, k)
        # R decreases with H: r > 0 means H too small
        lo = np.where(r > 0, H, lo)
        hi = np.where(r <= 0, H, hi)
        d = _slope(H, dic, alk, k)
        Hn = H - r / d
        bad = ~np.isfinite(Hn) | (Hn < lo) | (Hn > hi)
        Hn = np.where(bad, np.sqrt(lo * hi), Hn)
        done = np.abs(Hn - H) <= tol * H
        H = Hn
        if np.all(done):
            break
    else:
        raise ArithmeticError("carbonate chemistry: the H+ iteration did not converge "
                              f"(DIC {dic.min() * 1e6:.1f}..{dic.max() * 1e6:.1f}, "
                              f"ALK {alk.min() * 1e6:.1f}..{alk.max() * 1e6:.1f} umol/kg)")
    return H


def hydrogen_ion(dic, alk, k: CarbonateConstants):
    """H+ (mol kg-1) as float array, or as :class:`AD2` when DIC/ALK carry derivatives.

    With ``H0`` the converged float root and ``D = R_H(H0)``, two Newton steps
    ``H <- H - R(H; dic, alk) / D`` in AD2 arithmetic give exact first (after one) and second
    (after two) derivatives of the implicit function ``H(dic, alk)``."""
    dv, av = ad2.value(dic), ad2.value(alk)
    H0 = solve_hydrogen(dv, av, k)
    if not isinstance(dic, AD2) and not isinstance(alk, AD2):
        return H0
    D = _slope(H0, dv, av, k)
    ref = dic if isinstance(dic, AD2) else alk
    H = ref._lift(H0)
    for _ in range(2 if ref.order >= 2 else 1):
        H = H - alkalinity_residual(H, dic, alk, k) / D
    return H


def co2_star(dic_umol_kg, alk_umol_kg, k: CarbonateConstants):
    """Dissolved CO2* (umol kg-1) from DIC and ALK (umol kg-1); floats or AD2."""
    dic = dic_umol_kg * 1e-6
    alk = alk_umol_kg * 1e-6
    H = hydrogen_ion(dic, alk, k)
    H2 = H * H
    return dic * H2 / (H2 + k.K1 * H + k.K1 * k.K2) * 1e6


def pco2(dic_umol_kg, alk_umol_kg, k: CarbonateConstants):
    """pCO2 (uatm) = [CO2*] / K0 (K0 including the fugacity factor)."""
    return co2_star(dic_umol_kg, alk_umol_kg, k) / k.K0


def schmidt_co2(temp_c):
    """Schmidt number of CO2 in seawater (Wanninkhof 1992)."""
    t = np.asarray(temp_c, dtype=float)
    return 2073.1 - 125.62 * t + 3.6276 * t ** 2 - 0.043219 * t ** 3


def schmidt_o2(temp_c):
    """Schmidt number of O2 in seawater (Wanninkhof 1992)."""
    t = np.asarray(temp_c, dtype=float)
    return 1638.0 - 81.83 * t + 1.483 * t ** 2 - 0.008004 * t ** 3


def o2_saturation(temp_c, salinity):
    """O2 solubility at 1 atm (mol m-3): Garcia & Gordon (1992) fit to Benson & Krause (1984), spec §3.5."""
    t = np.asarray(temp_c, dtype=float)
    s = np.asarray(salinity, dtype=float)
    ts = np.log((298.15 - t) / (273.15 + t))
    A = (2.00907, 3.22014, 4.05010, 4.94457, -0.256847, 3.88767)
    B = (-6.24523e-3, -7.37614e-3, -10.3410e-3, -8.17083e-3)
    C0 = -4.88682e-7
    lnc = (A[0] + A[1] * ts + A[2] * ts ** 2 + A[3] * ts ** 3 + A[4] * ts ** 4 + A[5] * ts ** 5
           + s * (B[0] + B[1] * ts + B[2] * ts ** 2 + B[3] * ts ** 3) + C0 * s ** 2)
    return np.exp(lnc) * 1000.0 / 22391.6
