"""Configuration keys of the joint P-C-O cycle: its ``[model]`` switch and the ``[joint]`` section."""
from ...settings import Section, Setting
from .model import TRACERS

MODEL_SETTINGS = (
    Setting("labile", True, "joint model: labile production N_sat - P_C (false: the first-stage model without it)"),
)

SECTIONS = (
    Section("joint", (
        Setting("observations", "synthetic", "twin experiment (truth: the BGC defaults of spec §4.2, or [joint.truth])",
                choices=("synthetic",)),
        Setting("observed", ["DIP", "DIC", "ALK", "O2"], "observed tracers", kind="list[str]", choices=TRACERS),
        Setting("noise_fraction", 0.02, "twin-data noise std / the tracer's volume-weighted spatial std",
                minimum=0.0),
        Setting("start_perturbation", 0.1, "std of the start's offset from the truth in transformed parameters",
                minimum=0.0, defines_problem=False),
        Setting("truth", {}, "parameters of the twin truth (physical units)", kind="table"),
        Setting("npp_products", ["vgpm", "cbpm", "cafe"], "`bcp-hpc experiment joint-products`: one inversion each",
                kind="list[str]", defines_problem=False),
    ), "the joint inversion ([model] cycle = \"PCO\")"),
)
