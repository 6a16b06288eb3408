"""Options have owners: nothing the package puts into PETSc's options database outlives the solve or
inversion that needed it, the user's values win over the package's defaults, and every package option
is declared in one table."""
import numpy as np
import pytest

from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.solvers.options import PACKAGE_OPTIONS, OptionsScope, get_option, ksp_reason, options_table, tao_reason

PETSc = import_petsc4py()


def _database():
    return dict(PETSc.Options().getAll())


def test_scope_inserts_defaults_and_overrides_only_while_inserted():
    opts = PETSc.Options()
    opts.setValue("own_user_value", "7")
    opts.setValue("own_overridden", "user")
    before = _database()
    scope = OptionsScope("own_", defaults={"user_value": "1", "new_value": "2"}, overrides={"overridden": "pkg"})
    with scope.inserted():
        assert opts.getString("own_user_value") == "7"        # the user's value wins over a default
        assert opts.getString("own_new_value") == "2"
        assert opts.getString("own_overridden") == "pkg"
        with scope.inserted():                                   # re-entrant
            assert opts.getString("own_new_value") == "2"
        assert opts.getString("own_new_value") == "2"
        scope.set_override("late", "3")                          # applied at once while inserted
        assert opts.getString("own_late") == "3"
    assert _database() == before
    for k in ("own_user_value", "own_overridden"):
        opts.delValue(k)


def test_scope_is_removed_when_the_block_raises():
    before = _database()
    with pytest.raises(RuntimeError):
        with OptionsScope("boom_", {"ksp_type": "gmres"}, {"pc_type": "none"}):
            raise RuntimeError("failed solve")
    assert _database() == before


def test_declared_options_are_typed_and_listed():
    names = [o.name for o in PACKAGE_OPTIONS]
    assert len(names) == len(set(names))
    text = options_table()
    for n in names:
        assert f"-<prefix>{n} " in text
    with OptionsScope("typed_", overrides={"rhs_block": "7", "keep_ratio": "0.25", "blocktri": "0"}):
        assert get_option("typed_", "rhs_block") == 7
        assert get_option("typed_", "keep_ratio") == 0.25
        assert get_option("typed_", "blocktri") is False
    assert get_option("typed_", "rhs_block") == 0            # the table's default
    with pytest.raises(KeyError):
        get_option("typed_", "not_declared")


def test_reasons_are_named():
    assert ksp_reason(-3).startswith("DIVERGED_") and "(-3)" in ksp_reason(-3)
    assert tao_reason(3) == "CONVERGED_GATOL (3)"


@pytest.fixture(scope="module")
def p_system(small_grid):
    from bcp_hpc.grid.distributed import DistributedGrid
    from bcp_hpc.grid.embedded import synthetic_npp, synthetic_phosphate
    from bcp_hpc.models.system import ModelSystem
    from bcp_hpc.operators.circulation import synthetic_circulation
    from bcp_hpc.cycles.phosphorus.model import p_model
    g = small_grid
    T, _ = synthetic_circulation(g)
    m = p_model(g, synthetic_npp(g, "vgpm"), synthetic_phosphate(g), 2.1, sigma2=0.2)
    sysm = ModelSystem(m, DistributedGrid(g, PETSc.COMM_SELF), T)
    yield sysm
    sysm.destroy()


@pytest.mark.parametrize("path", ["direct", "structured", "iterative", "ooc"])
def test_no_option_outlives_a_steady_state_and_its_sensitivities(p_system, path, tmp_path, monkeypatch):
    from bcp_hpc.solvers.steady import SteadyState
    monkeypatch.setenv("MUMPS_OOC_TMPDIR", str(tmp_path))
    opts = PETSc.Options()
    opts.setValue("leak_solver", path)                       # the user's choice
    before = _database()
    with SteadyState(p_system, prefix="leak_") as ss:
        ss.solve()
        u1, u2 = ss.sensitivities(2)
        for v in list(u1) + list(u2.values()):
            v.destroy()
    assert _database() == before
    opts.delValue("leak_solver")


def test_no_option_outlives_a_block_triangular_solve_or_an_inversion(small_grid):
    from bcp_hpc.grid.distributed import DistributedGrid
    from bcp_hpc.inversion.objective import Objective, Observation
    from bcp_hpc.inversion.tao_driver import Inversion
    from bcp_hpc.models.system import ModelSystem
    from bcp_hpc.operators.world import load_world
    from bcp_hpc.solvers.steady import SteadyState
    from bcp_hpc.cycles.pco.model import joint_model
    world = load_world("tiny")
    before = _database()
    m = joint_model(world, world.npp(), 2.1)
    sysm = ModelSystem(m, DistributedGrid(world.grid, PETSc.COMM_WORLD), world.T)
    with SteadyState(sysm, prefix="leakbt_") as ss:
        ss.solve()
        assert "block-triangular" in ss.solver.describe()
        X = sysm.to_natural(ss.u)
    assert _database() == before
    # a short inversion of three parameters' worth of data (its TAO defaults, its steady states)
    obs = np.where(np.arange(world.grid.nwet) % 2 == 0, X[0] * 1.01, np.nan)
    obj = Objective(sysm, [Observation("DIP", obs)], prefix="leakinv_")
    inv = Inversion(obj, prefix="leakinvtao_", stop_after=1)
    inv.run()
    obj.destroy()
    sysm.destroy()
    assert _database() == before


def test_progress_lines_of_long_phases_only(caplog, monkeypatch):
    """A phase running past PROGRESS_AFTER_S reports its steps at INFO; a short one at DEBUG only."""
    import logging
    import time
    from bcp_hpc import log as bl
    logger = logging.getLogger("bcp_hpc.test_progress")
    with caplog.at_level(logging.DEBUG, logger="bcp_hpc.test_progress"):
        bl.progress(logger, time.perf_counter(), "short %d", 1)
        bl.progress(logger, time.perf_counter() - bl.PROGRESS_AFTER_S - 1, "long %d", 2)
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels == {"short 1": logging.DEBUG, "long 2": logging.INFO}
