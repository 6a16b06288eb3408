"""``bcp-hpc bench operators``: synthetic circulation on the OCIM2 mask, PETSc assembly, ideal age."""
from __future__ import annotations


from ..diagnostics.age import age_summary, ideal_age
from ..grid.distributed import DistributedGrid
from ..log import rprint
from ..operators.circulation import CirculationConfig, synthetic_circulation
from ..operators.sinking import martin_operator
from ..operators.transport import conservation_defects
from ..operators.world import default_shared_data_dir
from .common import PETSc, PhaseTimer, write_json


def run(args):
    timer = PhaseTimer()
    comm = PETSc.COMM_WORLD
    with timer.phase("grid"):
        data = args.data or default_shared_data_dir()
        if data and not args.generated:
            from ..grid.ocim2 import read_grid
            import os
            grid = read_grid(os.path.join(data, "M3d91x180x24.mat"))
            source = "ocim2-mask"
        else:
            from ..grid.embedded import embedded_grid
            grid = embedded_grid(91, 180, 24)
            source = "generated-2deg"
        dgrid = DistributedGrid(grid, comm)
    rprint(f"grid: {grid.summary()} [{source}]")
    rprint(f"layout: {dgrid.layout.describe()}")
    with timer.phase("circulation (scipy, natural order)"):
        T, fluxes = synthetic_circulation(grid, CirculationConfig())
        F = martin_operator(grid, 1.0 / (30 * 86400.0), 1.0)
    defT = conservation_defects(T, grid.box_volume)
    defF = conservation_defects(F, grid.box_volume)
    with timer.phase("assemble T (PETSc AIJ)"):
        Tp = dgrid.matrix_from_scipy(T)
    with timer.phase("assemble F (PETSc AIJ)"):
        Fp = dgrid.matrix_from_scipy(F)
    with timer.phase("ideal age (MUMPS LU)"):
        age = ideal_age(dgrid, Tp)
    summ = age_summary(grid, age)
    timer.report(f"bench operators on {comm.getSize()} rank(s), {grid.nwet} unknowns")
    rprint(f"conservation T: row-sum {defT['row_sum_rel']:.2e}, 1^T V T {defT['volume_column_sum_rel']:.2e}; "
           f"F: 1^T V F {defF['volume_column_sum_rel']:.2e}")
    rprint("ideal age (years): " + ", ".join(f"{k} {v:.0f}" for k, v in summ.items()))
    Tp.destroy()
    Fp.destroy()
    payload = {"benchmark": "operators", "source": source, "ranks": comm.getSize(), "unknowns": grid.nwet,
               "seconds": timer.seconds, "peak_rss_bytes": max(timer.peak_rss.values()),
               "peak_rss_bytes_per_phase": timer.peak_rss, "conservation": {"T": defT, "F": defF},
               "ideal_age_years": summ}
    write_json(args.json, payload)
    return 0
