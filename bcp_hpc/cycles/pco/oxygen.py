"""Oxygen processes of the joint model (spec §3.5): gas exchange to Garcia-Gordon saturation,
photosynthetic production and respiration with the switch ``0.5 + 0.5 tanh((O2 - 5) / 1)``.  They
follow the carbon processes' rates (:mod:`.carbon`), so they are declared after them."""
from __future__ import annotations

from ...models import ad2
from ...models.processes import Process
from .carbon import organic_remineralisation

#: centre and width (mmol m-3) of the respiration switch; the O2 tracer declares them to Newton
RESPIRATION_SWITCH = (5.0, 1.0)


def oxygen_processes() -> list:
    centre, width = RESPIRATION_SWITCH
    return [
        Process("o2_gas_exchange", lambda c, p, f, r: f["k_o2"] * (f["o2_sat"] - c["O2"]), {"O2": 1},
                description="air-sea O2 exchange towards saturation"),
        Process("photosynthetic_oxygen", lambda c, p, f, r: r["carbon_fixation"], {"O2": "rO2C"},
                description="O2 released per C fixed (r_O2:C)"),
        Process("respiration",
                lambda c, p, f, r: (0.5 + 0.5 * ad2.tanh((c["O2"] - centre) / width)) * organic_remineralisation(r, p),
                {"O2": lambda p, f: -p["rO2C"]}, description="O2 used by remineralisation, switched off in anoxia"),
    ]
