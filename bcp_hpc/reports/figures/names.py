"""The figures ``bcp-hpc plot`` draws (name -> what it shows), without importing matplotlib."""
FIGURE_NAMES = {
    "npp-maps": "model NPP for each sigma2 (Figure 1)",
    "npp-sigma2": "NPP and NPP_POP against sigma2 with the fit (Figure S3)",
    "obs-vs-model": "observed against modelled tracers (Figures S2/S4)",
    "product-maps": "satellite NPP, TOC, DOC_l and DOC_s export, labile production per product (Figures 2, 3)",
    "taylor": "POC flux at 100 m against trap stations (Figure 4)",
    "sections": "zonal-mean sections per basin of each observed tracer",
    "age-section": "ideal age sections per basin",
    "posterior": "parameters +- 1 sigma, correlation matrix, Hessian eigen-spectrum",
    "convergence": "objective, gradient norm, trust radius per iteration",
    "scaling": "scaling ladder of `bench scaling`",
}
