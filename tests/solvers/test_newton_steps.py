"""Newton's box-by-box step limits: positive tracers stay positive, boxes near a declared switch move
by at most one width or half their distance to its centre, and the limits pay off on the joint model."""
import numpy as np
import pytest

from bcp_hpc.cycles.pco.oxygen import RESPIRATION_SWITCH
from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.models.system import ModelSystem
from bcp_hpc.operators.world import load_world
from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.solvers.steady import SWITCH_ZONE, SteadyState

PETSc = import_petsc4py()


def _system(switch=RESPIRATION_SWITCH):
    from bcp_hpc.cycles.pco.model import joint_model
    world = load_world("tiny")
    model = joint_model(world, world.npp(), 2.1)
    o2 = model.tracers[model.tracer_names.index("O2")]
    assert o2.positive and o2.switch == RESPIRATION_SWITCH == (5.0, 1.0)
    o2.switch = switch
    return ModelSystem(model, DistributedGrid(world.grid, PETSc.COMM_WORLD), world.T)


@pytest.fixture(scope="module")
def system():
    s = _system()
    yield s
    s.destroy()


def _rows(system, vec):
    return vec.getArray().reshape(system.nt, -1)


def test_the_limits_box_by_box(system):
    """u - d is the step; the expected limited steps are worked out by hand from the two rules."""
    o2, dic = system.model.tracer_names.index("O2"), system.model.tracer_names.index("DIC")
    ss = SteadyState(system, prefix="lim_")
    u, du = system.dgrid.create_vec(system.nt), system.dgrid.create_vec(system.nt)
    u.set(100.0)
    du.set(0.0)
    cases = [  # (O2 before, step d, limited d)
        (200.0, 10.0, 10.0),        # far from the switch before and after: the Newton step
        (200.0, 195.0, 180.0),      # the positive rule first (to 20): then outside the zone
        (30.0, 26.0, 12.5),         # would land in the zone: half the distance 25 to the centre
        (12.0, 10.5, 3.5),          # would cross the centre (7 above to 3.5 below): half of 7
        (10.0, 50.0, 2.5),          # positive rule 9.0, then the switch's half distance 2.5
        (6.0, 3.0, 1.0),            # within the zone: one width
        (5.5, -0.8, -0.8),          # within the zone, a step smaller than a width
        (4.0, -30.0, -1.0),         # anoxic side, moving away: one width
        (-2.0, 6.0, 6.0),           # negative, moving away outside the zone: the Newton step
        (-2.0, -8.0, -3.5),         # negative, crossing the centre upwards: half the distance 7
        (5.0 + SWITCH_ZONE + 40.0, 38.0, 38.0),   # ends at 5 + SWITCH_ZONE + 2: outside the zone
    ]
    ua, da = _rows(system, u), _rows(system, du)
    for k, (before, step, _) in enumerate(cases):
        ua[o2][k], da[o2][k] = before, step
    da[dic][:3] = [1e3, -1e3, 150.0]            # DIC declares no limit
    d = ss._limited_step(u, du)
    assert d is not None
    got = _rows(system, d)
    np.testing.assert_allclose(got[o2][:len(cases)], [c[2] for c in cases], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[dic], da[dic])
    np.testing.assert_array_equal(got[o2][len(cases):], 0.0)
    d.destroy()
    # nothing to limit: None (the caller takes the Newton step)
    ua[o2][:] = 200.0
    da[o2][:] = 5.0
    assert ss._limited_step(u, du) is None
    for v in (u, du):
        v.destroy()
    ss.destroy()


def test_the_switch_limit_saves_factorizations_and_keeps_the_state(system):
    """From the model's first guess (O2 200 mmol m-3 everywhere), the O2 component converges with fewer
    factorizations when the switch is declared than with the positive rule alone, to the same state."""
    plain = _system(switch=None)
    runs = {}
    for name, sysm in (("switch", system), ("plain", plain)):
        with SteadyState(sysm, prefix=f"lim_{name}_") as ss:
            ss.solve()
            runs[name] = (ss.solver.component_stats()[-1], sysm.to_natural(ss.u))
    plain.destroy()
    (with_switch, X), (without, Y) = runs["switch"], runs["plain"]
    assert with_switch["tracers"] == ["O2"] == without["tracers"]
    assert with_switch["factorizations"] < without["factorizations"], (with_switch, without)
    assert np.abs(X - Y).max() <= 1e-8 * np.abs(Y).max()
