"""Configuration keys of the P cycle: its ``[model]`` switches, the twin truth and the sigma2 sweep."""
from ...constants import SECONDS_PER_YEAR
from ...settings import Section, Setting

MODEL_SETTINGS = (
    Setting("sigma2", 0.0, "fraction of uptake to labile DOP", minimum=0.0, maximum=0.8),
    Setting("pop_to", "DOPs", "where POP dissolves: DOPs (paper) or DIP (group's code)", choices=("DOPs", "DIP")),
    Setting("uptake", "w19", "uptake form: w19 (paper's P model) or bgc (group's code)", choices=("w19", "bgc")),
)

SECTIONS = (
    Section("truth", open=True, value_kind="float",
            defaults={"alpha": 0.08, "beta": 0.6, "b": 1.0, "kappa_d": 1.0 / (0.4 * SECONDS_PER_YEAR)},
            doc="P twin experiments: the parameters (physical units) that make the observations, sigma2 = 0"),
    Section("experiment", (
        Setting("sigma2_values", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "the sigma2 sweep", kind="list[float]",
                minimum=0.0, maximum=0.8),
        Setting("sensitivity_runs", True, "also the kappa_l = 1/24 h and kappa_p = 1/60 d runs at sigma2 = 0.5"),
    ), "the P sigma2 sweep (spec §2.6)", defines_problem=False),
)
