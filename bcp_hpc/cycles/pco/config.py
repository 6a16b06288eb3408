"""Configuration keys of the joint P-C-O cycle: its ``[model]`` switch and the ``[joint]`` section."""
from ...settings import Section, Setting
from .model import TRACERS

MODEL_SETTINGS = (
    Setting("labile", True, "joint model: labile production N_sat - P_C (false: the first-stage model without it)"),
    Setting("borate", "v1.01", "joint model: total borate of the carbonate chemistry, CO2SYS v1.01's expression "
            "(the group's code) or the rounded Uppstroem value (PyCO2SYS)", choices=("v1.01", "rounded")),
    Setting("uptake_pc", "reoptNature", "joint model: P:C inside the uptake's power, 0.006 + 0.0069 DIP_obs "
            "(reoptNature set-up, the paper's joint runs) or the constant 1/117", choices=("reoptNature", "constant")),
)

SECTIONS = (
    Section("joint", (
        Setting("observations", "synthetic", "synthetic: a twin experiment (truth: the BGC defaults of spec §4.2, or "
                "[joint.truth]); inputs: the observation fields of [world] inputs (po4_obs, dic_obs - dic_ant, "
                "alk_obs, o2_obs, doc_obs)", choices=("synthetic", "inputs")),
        Setting("remove_anthropogenic", True, "subtract the anthropogenic CO2 field (dic_ant) from observed DIC: the "
                "model is pre-industrial"),
        Setting("dip_mean", 0.0, "real observations: mean DIP the restoring holds; 0: the volume-weighted mean of the "
                "observed DIP (spec A.3)", units="mmol m-3", minimum=0.0),
        Setting("alk_mean", 0.0, "real observations: mean ALK the restoring holds; 0: from the observed ALK",
                units="mmol m-3", minimum=0.0),
        Setting("s_dic", 0.0, "real observations: surface DIC of the virtual flux; 0: the layer-1 mean of the "
                "observed DIC", units="mmol m-3", minimum=0.0),
        Setting("s_alk", 0.0, "real observations: surface ALK of the virtual flux; 0: the layer-1 mean of the "
                "observed ALK", units="mmol m-3", minimum=0.0),
        Setting("observed", ["DIP", "DIC", "ALK", "O2"], "observed tracers (add \"DOC\", total DOC_s + DOC_l + DOC_r, "
                "as the group's code fits it)", kind="list[str]", choices=TRACERS + ("DOC",)),
        Setting("noise_fraction", 0.02, "twin-data noise std / the tracer's volume-weighted spatial std",
                minimum=0.0),
        Setting("start_perturbation", 0.1, "std of the start's offset from the truth in transformed parameters",
                minimum=0.0, defines_problem=False),
        Setting("truth", {}, "parameters of the twin truth (physical units)", kind="table"),
        Setting("npp_products", ["vgpm", "cbpm", "cafe"], "`bcp-hpc experiment joint-products`: one inversion each",
                kind="list[str]", defines_problem=False),
    ), "the joint inversion ([model] cycle = \"PCO\")"),
)
