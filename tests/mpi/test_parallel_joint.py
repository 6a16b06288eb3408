"""Joint P-C-O model on N ranks equals the serial (COMM_SELF) computation: Newton steady state,
first-order sensitivities and the objective's gradient and (adjoint) Hessian."""
import numpy as np
import pytest

from bcp_hpc.grid.distributed import DistributedGrid
from bcp_hpc.inversion.objective import Objective, Observation
from bcp_hpc.cycles.pco.model import joint_model
from bcp_hpc.models.system import ModelSystem
from bcp_hpc.operators.world import load_world
from bcp_hpc.petsc_env import import_petsc4py
from bcp_hpc.experiments.twin import synthetic_observations

from .test_parallel_operators import all_ranks

PETSc = import_petsc4py()


@pytest.fixture(scope="module")
def world():
    return load_world("tiny")


def evaluate(world, comm, obs=None, local=False):
    model = joint_model(world, world.npp(), 2.1)
    system = ModelSystem(model, DistributedGrid(world.grid, comm), world.T)
    names = model.tracer_names
    if obs is None:      # observations from the default model's state (serial)
        obj = Objective(system, [Observation("DIP", np.linspace(1, 3, world.grid.nwet))], prefix="jser_")
        obj.evaluate(model.parameters.get_x(), 0)
        X = obj.state_to_natural()
        obj.destroy()
        system.destroy()
        V = world.grid.box_volume
        return {nm: synthetic_observations(X[names.index(nm)], V, 0.02 * X[names.index(nm)].std(), 0.6, k)[0]
                for k, nm in enumerate(("DIP", "DIC", "ALK", "O2"))}
    prefix = "jpar_" if comm.getSize() > 1 else "jser_"
    loc = system.loc
    obj = Objective(system, [Observation(nm, y[loc] if local else y, local=local) for nm, y in obs.items()],
                    prefix=prefix)
    x = model.parameters.get_x() - 0.03
    f, g, H = obj.evaluate(x, 2)
    X = obj.state_to_natural()
    obj.destroy()
    system.destroy()
    return X, f, g, H


def rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def test_joint_state_gradient_hessian_match_serial(world):
    obs = evaluate(world, PETSc.COMM_SELF)
    Xs, fs, gs, Hs = evaluate(world, PETSc.COMM_SELF, obs)
    Xp, fp, gp, Hp = evaluate(world, PETSc.COMM_WORLD, obs)
    ok = rel(Xp, Xs) <= 1e-10 and abs(fp - fs) <= 1e-10 * abs(fs)
    ok = ok and rel(gp, gs) <= 1e-8 and rel(Hp, Hs) <= 1e-8
    assert all_ranks(ok), (rel(Xp, Xs), abs(fp - fs) / abs(fs), rel(gp, gs), rel(Hp, Hs))
    # each rank given only its own boxes' observations: the same objective (another solve, so to the
    # same tolerances as against the serial one)
    Xl, fl, gl, Hl = evaluate(world, PETSc.COMM_WORLD, obs, local=True)
    ok = abs(fl - fs) <= 1e-10 * abs(fs) and rel(gl, gs) <= 1e-8 and rel(Hl, Hs) <= 1e-8
    assert all_ranks(ok), (abs(fl - fs) / abs(fs), rel(gl, gs), rel(Hl, Hs))


def test_twin_truth_stored_on_n_ranks_is_read_on_resume(tmp_path_factory):
    """The twin's true state is written once (rank 0) on N ranks, equals the serial one, is whole on
    rank 0 only, and a resumed set-up on N ranks reads it (rank 0) instead of solving it again; the
    observations are the serial set-up's, whole on rank 0 and each rank's own boxes everywhere."""
    import os
    from bcp_hpc.cli.pipeline import options_scope
    from bcp_hpc.experiments.description import RunDescription
    from bcp_hpc.experiments.runner import TRUTH_FILE, Setup
    mpi = PETSc.COMM_WORLD.tompi4py()
    d = mpi.bcast(str(tmp_path_factory.mktemp("truth")) if mpi.rank == 0 else None)
    run = RunDescription.load(None, {"world": {"source": "tiny"}, "model": {"cycle": "PCO"}})
    with options_scope(run):
        serial = Setup(run, PETSc.COMM_SELF)
        reference = np.asarray(serial.truth_state)
        serial_obs = serial.observations
        serial.destroy()
        first = Setup(run, PETSc.COMM_WORLD, out_dir=d)
        mpi.Barrier()
        assert all_ranks(os.path.exists(os.path.join(d, TRUTH_FILE)))
        if mpi.rank == 0:
            ok = np.abs(np.asarray(first.truth_state) - reference).max() <= 1e-8 * np.abs(reference).max()
        else:
            ok = first.truth_state is None
        assert all_ranks(ok)
        # the same boxes observed, with the same noise, as the serial set-up's
        assert all_ranks(list(first.observations) == list(serial_obs) == list(first.local_observations))

        def same(z, y):
            return np.array_equal(np.isnan(z), np.isnan(y)) and np.nanmax(np.abs(z - y)) <= 1e-7 * np.nanmax(np.abs(y))
        loc = first.dgrid.local_natural
        for name, y in serial_obs.items():
            whole = same(first.observations[name], y) if mpi.rank == 0 else first.observations[name] is None
            assert all_ranks(whole and same(first.local_observations[name], y[loc])), name
        first.destroy()
        called = []
        import bcp_hpc.experiments.runner as runner
        original = runner.SteadyState

        class Counting(original):
            def solve(self, *a, **k):
                called.append(self.prefix)
                return super().solve(*a, **k)
        runner.SteadyState = Counting
        try:
            again = Setup(run, PETSc.COMM_WORLD, out_dir=d, resume=True)
        finally:
            runner.SteadyState = original
        assert all_ranks("truth_" not in called)
        assert all_ranks(np.array_equal(np.asarray(again.truth_state), np.asarray(first.truth_state))
                         if mpi.rank == 0 else again.truth_state is None)
        again.destroy()


def test_diagnostics_whole_state_on_rank_0_only():
    """The cycle's diagnostics on N ranks: the hook sees the whole state on rank 0 only, the adjoint
    DOC export is solved by every rank, and every rank gets rank 0's result, equal to the serial one."""
    from bcp_hpc.cli.pipeline import options_scope
    from bcp_hpc.experiments.description import RunDescription
    from bcp_hpc.experiments.runner import Setup, diagnose
    from bcp_hpc.solvers.steady import SteadyState
    mpi = PETSc.COMM_WORLD.tompi4py()
    run = RunDescription.load(None, {"world": {"source": "tiny"}, "model": {"cycle": "PCO"}})

    def diagnostics(comm):
        setup = Setup(run, comm)
        try:
            with SteadyState(setup.system, prefix="dg_") as ss:
                ss.solve()
                state = setup.system.to_natural(ss.u, root=0)
            assert (state is None) == (comm.getRank() != 0)
            return diagnose(setup, setup.model, state)
        finally:
            setup.destroy()

    with options_scope(run):
        serial = diagnostics(PETSc.COMM_SELF)
        parallel = diagnostics(PETSc.COMM_WORLD)
    keys = ("toc_export_pg_c_per_yr", "docs_export_adjoint_pg_c_per_yr", "docl_export_adjoint_pg_c_per_yr",
            "npp_model_pg_c_per_yr", "poc_flux_100m_pg_c_per_yr")
    ok = all(abs(parallel[k] - serial[k]) <= 1e-8 * abs(serial[k]) for k in keys)
    ok = ok and parallel["docs_export_adjoint_pg_c_per_yr"] == pytest.approx(parallel["docs_export_pg_c_per_yr"],
                                                                            rel=1e-8)
    m, s = parallel["toc_export_map_mg_c_m2_d"], serial["toc_export_map_mg_c_m2_d"]
    ok = ok and np.array_equal(np.isnan(m), np.isnan(s)) and np.nanmax(np.abs(m - s)) <= 1e-8 * np.nanmax(np.abs(s))
    # every rank holds rank 0's result
    ok = ok and mpi.allgather(parallel["toc_export_pg_c_per_yr"]) == [parallel["toc_export_pg_c_per_yr"]] * mpi.size
    assert all_ranks(ok), {k: (parallel[k], serial[k]) for k in keys}


def _observation_file(path, grid):
    """A `data build` file of observation fields on ``grid``: gaps, negatives and outliers included, so that
    the filter of spec A.1 (with percentiles of the whole field) removes some on every rank."""
    from bcp_hpc.data.climatology import ModelField
    from bcp_hpc.data.inputs import model_units, write_inputs
    rng = np.random.default_rng(7)
    fields = []
    for name, centre in (("po4_obs", 2.0), ("dic_obs", 2300.0), ("dic_ant", 40.0), ("alk_obs", 2350.0),
                         ("o2_obs", 200.0)):
        v = centre * rng.uniform(0.5, 1.5, grid.nwet)
        if name != "dic_ant":
            v[rng.random(grid.nwet) < 0.3] = np.nan
            v[rng.choice(grid.nwet, 5, replace=False)] *= -1.0
            v[rng.choice(grid.nwet, 5, replace=False)] *= 50.0
        fields.append(ModelField(name, grid.to3d(v), grid.to3d(np.isfinite(v).astype(float)),
                                 np.zeros(grid.shape, bool), model_units(name), "test", model_units(name)))
    write_inputs(path, grid, fields=fields)


def test_real_observations_read_by_hyperslab_equal_serial(tmp_path_factory):
    """Real observations from a `data build` file on N ranks: rank 0 reads each field whole (percentile
    limits, constants); every other rank reads only its boxes by hyperslab. The whole fields on rank 0,
    every rank's boxes and the constants equal the serial set-up's, bit for bit; a missing observable is
    the same error on every rank."""
    import os
    from bcp_hpc.cli.pipeline import options_scope
    from bcp_hpc.errors import InputError
    from bcp_hpc.experiments.description import RunDescription
    from bcp_hpc.experiments.runner import Setup
    mpi = PETSc.COMM_WORLD.tompi4py()
    d = mpi.bcast(str(tmp_path_factory.mktemp("obs")) if mpi.rank == 0 else None)
    path = os.path.join(d, "obs.h5")
    grid = load_world("tiny").grid
    if mpi.rank == 0:
        _observation_file(path, grid)
    mpi.Barrier()
    cfg = {"world": {"source": "tiny", "inputs": [path]}, "model": {"cycle": "PCO"},
           "joint": {"observations": "inputs", "observed": ["DIP", "DIC", "ALK", "O2"]}}
    run = RunDescription.load(None, cfg)
    with options_scope(run):
        serial = Setup(run, PETSc.COMM_SELF)
        ref, ref_info = serial.observations, serial.observations_info
        serial.destroy()
        par = Setup(run, PETSc.COMM_WORLD)
        loc = par.dgrid.local_natural
        ok = par.observations_info["constants"] == ref_info["constants"]
        ok = ok and list(par.local_observations) == list(ref) == ["DIP", "DIC", "ALK", "O2"]
        for name, y in ref.items():
            read = ref_info["tracers"][name]                      # the filter removed some on its limits
            assert read["n_obs"] < read["n_raw"] and read["limits"][0] <= np.nanmin(y) and np.nanmin(y) >= 0
            ok = ok and np.array_equal(par.local_observations[name], y[loc], equal_nan=True)
            ok = ok and (np.array_equal(par.observations[name], y, equal_nan=True) if mpi.rank == 0
                         else par.observations[name] is None)
        ok = ok and set(par.observations_read.values()) == {"hyperslab"}
        par.destroy()
        assert all_ranks(ok)
        bad = RunDescription.load(None, {**cfg, "joint": {"observations": "inputs", "observed": ["DIP", "DOC"]}})
        with pytest.raises(InputError, match="no DOC observations") as e:
            Setup(bad, PETSc.COMM_WORLD)
        assert all_ranks("doc_obs" in str(e.value) or "[fields.doc_obs]" in str(e.value))


def test_real_observations_from_a_folder_are_sent_by_rank_0(tmp_path_factory):
    """DIP from an OCIM2 data folder's GLODAP file (a .mat, no partial read): rank 0 reads it and sends each
    rank its boxes, equal to the serial set-up's bit for bit."""
    import os
    import scipy.io
    from bcp_hpc.cli.pipeline import options_scope
    from bcp_hpc.cycles.phosphorus.run import GLODAP_FILE
    from bcp_hpc.experiments.description import RunDescription
    from bcp_hpc.experiments.runner import Setup
    mpi = PETSc.COMM_WORLD.tompi4py()
    d = mpi.bcast(str(tmp_path_factory.mktemp("glodap")) if mpi.rank == 0 else None)
    grid = load_world("tiny").grid
    if mpi.rank == 0:
        v = np.random.default_rng(3).uniform(0.2, 3.0, grid.nwet)
        v[::4] = np.nan
        scipy.io.savemat(os.path.join(d, GLODAP_FILE), {"po4raw": grid.to3d(v)})
    mpi.Barrier()
    run = RunDescription.load(None, {"world": {"source": "tiny", "inputs": [d]}, "model": {"cycle": "P"},
                                     "observations": {"dip": "glodap"}})
    with options_scope(run):
        serial = Setup(run, PETSc.COMM_SELF)
        ref = serial.observations["DIP"]
        serial.destroy()
        par = Setup(run, PETSc.COMM_WORLD)
        loc = par.dgrid.local_natural
        ok = par.observations_read == {"DIP": "sent by rank 0"}
        ok = ok and np.array_equal(par.local_observations["DIP"], ref[loc], equal_nan=True)
        ok = ok and (np.array_equal(par.observations["DIP"], ref, equal_nan=True) if mpi.rank == 0
                     else par.observations["DIP"] is None)
        par.destroy()
    assert all_ranks(ok)
