"""Units of the input data sets and their conversion to model units.

Model units: concentrations mmol m^-3, temperature deg C, salinity PSS-78 (written "1"),
NPP and export fluxes mg C m^-2 d^-1.

Unit strings differ between distributors (WOA: ``micromoles_per_kilogram``; GLODAPv2:
``micro-mol kg-1``; CMIP6: ``mol m-2 s-1``); :func:`canonical_units` maps the spellings we
know to one canonical key and refuses anything else, so a file with an unexpected
units attribute is rejected rather than silently mis-scaled.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import InputError

#: canonical key -> accepted spellings (compared after lower-casing and removing blanks, '_', '.', '^')
_SPELLINGS = {
    "umol/kg": ["umol/kg", "umolkg-1", "µmol/kg", "µmolkg-1", "micromolesperkilogram", "micromol/kg",
                "micro-molkg-1", "micromolkg-1"],
    "umol/l": ["umol/l", "umoll-1", "µmol/l", "micromolesperliter", "micromolesperlitre", "micromol/l",
               "mmol/m3", "mmolm-3", "mmol/m^3", "millimolespercubicmeter", "mmolm**-3", "umoldm-3"],
    "ml/l": ["ml/l", "mll-1", "millilitersperliter", "millilitresperlitre"],
    "degC": ["degc", "degreesc", "degreescelsius", "degree_celsius", "celsius", "°c", "c"],
    "psu": ["psu", "pss", "pss-78", "pss78", "1", "", "unitless", "practicalsalinityunit",
            "practicalsalinityscale"],
    "mgC/m2/d": ["mgcm-2d-1", "mgc/m2/d", "mgcm-2day-1", "mgc/m2/day", "mgcm**-2d**-1", "mgm-2d-1",
                 "mgcm**-2day**-1", "mgcm**-2/day", "mgcm-2/d", "mgc/m**2/d",
                 "mg/m2/d", "mgc/m^2/day", "mgcm-2/day", "mgc/m**2/day"],
    "molC/m2/s": ["molm-2s-1", "molcm-2s-1", "mol/m2/s", "molm**-2s**-1"],
    "mmolC/m2/yr": ["mmolcm-2yr-1", "mmolm-2yr-1", "mmolc/m2/yr"],
}
_LOOKUP = {}
for _key, _names in _SPELLINGS.items():
    for _n in _names:
        _LOOKUP[_n] = _key

#: what each kind of field must be convertible to
KIND_TARGET = {"concentration": "mmol/m3", "temperature": "degC", "salinity": "psu", "areal_flux": "mgC/m2/d"}
KIND_ACCEPTS = {
    "concentration": {"umol/kg", "umol/l", "ml/l"},
    "temperature": {"degC"},
    "salinity": {"psu"},
    "areal_flux": {"mgC/m2/d", "molC/m2/s", "mmolC/m2/yr"},
}
#: 1 ml of O2 (STP) = 44.661 umol (Garcia & Gordon; the factor OCIM-BGC uses)
O2_UMOL_PER_ML = 44.661
#: constant density used when no temperature/salinity is available (kg m^-3), OCIM-BGC's value
DEFAULT_DENSITY = 1025.0
CARBON_MG_PER_MOL = 12.011e3
SECONDS_PER_DAY = 86400.0


def _squash(u: str) -> str:
    return re.sub(r"[\s_.^]", "", str(u).strip().lower())


def canonical_units(units: str | bytes | None, *, path: str | None = None, variable: str | None = None) -> str:
    """The canonical key of a units string, or :class:`InputError` naming file and variable."""
    if isinstance(units, bytes):
        units = units.decode("utf-8", "replace")
    if units is None:
        raise InputError("has no 'units' attribute; give the units in the recipe (units = \"...\")",
                         path=path, variable=variable)
    key = _LOOKUP.get(_squash(units))
    if key is None:
        raise InputError(f"units '{units}' not recognised (known: {sorted(_SPELLINGS)})", path=path, variable=variable)
    return key


def check_kind(units_key: str, kind: str, *, path=None, variable=None, original=None):
    if kind not in KIND_ACCEPTS:
        raise ValueError(f"unknown field kind {kind}")
    if units_key not in KIND_ACCEPTS[kind]:
        raise InputError(f"units '{original or units_key}' are not {kind} units "
                         f"(expected one of {sorted(KIND_ACCEPTS[kind])})", path=path, variable=variable)


def seawater_density(temperature_c, salinity, depth_m=0.0):
    """In-situ seawater density (kg m^-3).

    One-atmosphere density from the UNESCO (1981) / EOS-80 polynomial in temperature (deg C)
    and practical salinity, times ``1 + 4.4e-6 dbar^-1 * p`` for compression with pressure
    ``p ~= depth`` (dbar); the linear compression term is within 0.1 % of EOS-80 above
    5000 m, far below the uncertainty of the climatologies it converts.
    """
    T = np.asarray(temperature_c, dtype=float)
    S = np.clip(np.asarray(salinity, dtype=float), 0.0, None)
    rho_w = (999.842594 + 6.793952e-2 * T - 9.095290e-3 * T ** 2 + 1.001685e-4 * T ** 3
             - 1.120083e-6 * T ** 4 + 6.536332e-9 * T ** 5)
    rho0 = (rho_w + S * (0.824493 - 4.0899e-3 * T + 7.6438e-5 * T ** 2 - 8.2467e-7 * T ** 3 + 5.3875e-9 * T ** 4)
            + S ** 1.5 * (-5.72466e-3 + 1.0227e-4 * T - 1.6546e-6 * T ** 2) + 4.8314e-4 * S ** 2)
    return rho0 * (1.0 + 4.4e-6 * np.asarray(depth_m, dtype=float))


def to_model_units(values, units_key: str, kind: str, density=None):
    """Convert ``values`` (in ``units_key``) to the model units of ``kind``.

    ``density`` (kg m^-3, broadcastable) is needed for umol kg^-1 -> mmol m^-3; when None
    the constant :data:`DEFAULT_DENSITY` is used.
    """
    v = np.asarray(values, dtype=float)
    if kind == "concentration":
        if units_key == "umol/l":
            return v
        if units_key == "ml/l":
            return v * O2_UMOL_PER_ML
        if units_key == "umol/kg":
            rho = DEFAULT_DENSITY if density is None else density
            return v * np.asarray(rho) / 1000.0
    if kind in ("temperature", "salinity"):
        return v
    if kind == "areal_flux":
        if units_key == "mgC/m2/d":
            return v
        if units_key == "molC/m2/s":
            return v * CARBON_MG_PER_MOL * SECONDS_PER_DAY
        if units_key == "mmolC/m2/yr":
            return v * CARBON_MG_PER_MOL / 1000.0 / 365.0
    raise ValueError(f"no conversion from {units_key} for kind {kind}")
