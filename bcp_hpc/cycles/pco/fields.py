"""Fixed fields of the joint P-C-O model (natural-order n-vectors; surface quantities are 0 below)."""
from __future__ import annotations

import numpy as np

from ...constants import MG_C_PER_MMOL, SECONDS_PER_DAY
from ...errors import InputError
from ...models import carbonate
from ..phosphorus.processes import reopt_nature_p_to_c, uptake_field_dict, uptake_fields

#: the P:C inside the uptake's power (spec §2.2, §8.1): the reoptNature set-up's GM15 function of
#: phosphate (the joint runs of the paper) or the constant 1/117 of the group's ``src/SetUp.m``
UPTAKE_PC = ("reoptNature", "constant")


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


def joint_fields(world, npp_col_mgC_m2_d: np.ndarray, *, po4_obs: np.ndarray | None = None,
                 uptake_pc: str = "reoptNature") -> dict:
    """Temperature (deg C), phosphate (mmol m-3), satellite production ``nsat`` (mmol C m-3 s-1),
    silicate index Y, gas-exchange coefficients (s^-1), O2 saturation (mmol m-3), P-E (s^-1); the
    uptake's P:C by ``uptake_pc`` (:data:`UPTAKE_PC`)."""
    if uptake_pc not in UPTAKE_PC:
        raise InputError(f"uptake_pc must be one of {UPTAKE_PC}, got {uptake_pc!r}", variable="uptake_pc")
    grid = world.grid
    n = grid.nwet
    theta = np.maximum(np.asarray(world.temperature, dtype=float), -2.0)
    po4 = np.maximum(np.asarray(world.dip_gamma if po4_obs is None else po4_obs, dtype=float), 0.05)
    p_to_c = reopt_nature_p_to_c(po4) if uptake_pc == "reoptNature" else None
    uptake = uptake_field_dict(*uptake_fields(grid, npp_col_mgC_m2_d, po4, "bgc", p_to_c=p_to_c))
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
        **uptake,
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
