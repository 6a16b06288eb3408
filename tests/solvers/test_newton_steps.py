"""Newton's box-by-box step limits: positive tracers stay positive, boxes near a declared switch move
by at most one width or SWITCH_APPROACH of their distance to its centre, and the limits pay off on the
joint model."""
import numpy as np
import pytest

from bcp_hpc.cycles.pco.oxygen import RESPIRATION_SWITCH
from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.models.system import ModelSystem
from bcp_hpc.operators.world import load_world
from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.solvers.steady import SWITCH_APPROACH, SWITCH_ZONE, SteadyState

PETSc = import_petsc4py()


def _system(switch=RESPIRATION_SWITCH):
    from bcp_hpc.cycles.pco.model import joint_model
    world = load_world("tiny")
    model = joint_model(world, world.npp(), 2.1)
    o2 = model.tracers[model.tracer_names.index("O2")]
    assert not o2.positive and o2.switch == RESPIRATION_SWITCH == (5.0, 1.0)
    o2.switch = switch
    return ModelSystem(model, DistributedGrid(world.grid, PETSc.COMM_WORLD), world.T)


@pytest.fixture(scope="module")
def system():
    s = _system()
    yield s
    s.destroy()


def _rows(system, vec):
    return vec.getArray().reshape(system.nt, -1)


def _limited(system, tracer, cases):
    """The limited steps of ``tracer`` for ``cases`` ((value before, step d), u - d is the new value), and
    of DIC, whose steps are set to ``[1e3, -1e3, 150]`` in its first boxes."""
    a, dic = system.model.tracer_names.index(tracer), system.model.tracer_names.index("DIC")
    ss = SteadyState(system, prefix="lim_")
    u, du = system.dgrid.create_vec(system.nt), system.dgrid.create_vec(system.nt)
    u.set(100.0)
    du.set(0.0)
    ua, da = _rows(system, u), _rows(system, du)
    for k, (before, step) in enumerate(cases):
        ua[a][k], da[a][k] = before, step
    if tracer != "DIC":
        da[dic][:3] = [1e3, -1e3, 150.0]
    d = ss._limited_step(u, du)
    assert d is not None
    got = _rows(system, d).copy()
    d.destroy()
    for v in (u, du):
        v.destroy()
    ss.destroy()
    return got[a], got[dic], da[dic].copy()


def test_the_switch_limit_box_by_box(system):
    """The expected limited steps are worked out by hand from the rule (centre 5, width 1)."""
    assert (SWITCH_ZONE, SWITCH_APPROACH) == (1.0, 0.9)
    cases = [  # (O2 before, step d, limited d)
        (200.0, 10.0, 10.0),        # far from the switch before and after: the Newton step
        (200.0, 195.0, 175.5),      # would end at the centre: 0.9 of the distance 195
        (30.0, 26.0, 22.5),         # would cross the centre (to 4): 0.9 of 25
        (12.0, 10.5, 6.3),          # would cross (7 above to 3.5 below): 0.9 of 7
        (6.0, 3.0, 1.0),            # one width above, crossing: one width (more than 0.9 of 1)
        (5.5, -0.8, -0.8),          # within a width, a step smaller than a width
        (4.5, 0.3, 0.3),            # within a width, a small step down
        (3.0, -20.0, -1.8),         # anoxic side, crossing upwards: 0.9 of 2
        (4.0, -30.0, -1.0),         # one width below, crossing upwards: one width
        (-2.0, 6.0, 6.0),           # negative, moving away: the Newton step
        (-2.0, -8.0, -6.3),         # negative, crossing upwards (to 6): 0.9 of 7
        (5.0 + SWITCH_ZONE + 40.0, 38.0, 38.0),   # ends at 5 + SWITCH_ZONE + 2: outside the zone
    ]
    o2, dic, dic_step = _limited(system, "O2", [c[:2] for c in cases])
    np.testing.assert_allclose(o2[:len(cases)], [c[2] for c in cases], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(dic, dic_step)          # DIC declares no limit
    np.testing.assert_array_equal(o2[len(cases):], 0.0)
    # nothing to limit: None (the caller takes the Newton step)
    ss = SteadyState(system, prefix="lim_")
    u, du = system.dgrid.create_vec(system.nt), system.dgrid.create_vec(system.nt)
    u.set(200.0)
    du.set(5.0)
    assert ss._limited_step(u, du) is None
    for v in (u, du):
        v.destroy()
    ss.destroy()


def test_the_positive_limit_box_by_box(system):
    """A tracer declared positive falls at most to a tenth of itself (DIC declared so for this test)."""
    dic = system.model.tracers[system.model.tracer_names.index("DIC")]
    cases = [  # (DIC before, step d, limited d)
        (100.0, 95.0, 90.0),        # would fall to 5: to 10, a tenth of itself
        (100.0, 50.0, 50.0),        # falls to half: the Newton step
        (100.0, -50.0, -50.0),      # rises: the Newton step
        (-3.0, 5.0, 5.0),           # not positive: no limit
        (2.0, 2.5, 1.8),            # would go negative: to 0.2
    ]
    dic.positive = True
    try:
        got, _, _ = _limited(system, "DIC", [c[:2] for c in cases])
    finally:
        dic.positive = False
    np.testing.assert_allclose(got[:len(cases)], [c[2] for c in cases], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[len(cases):], 0.0)


def test_the_switch_limit_saves_factorizations_and_keeps_the_state(system):
    """From the model's first guess (O2 200 mmol m-3 everywhere), the O2 component converges with fewer
    factorizations when the switch is declared than with Newton's plain steps, to the same state."""
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
