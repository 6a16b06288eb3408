"""A twin experiment keeps its true state in the output folder: ``--resume`` reads it instead of solving
it again, and only when it belongs to the same problem and truth."""
import logging

import h5py
import numpy as np

from bcp_hpc.cli.pipeline import options_scope
from bcp_hpc.experiments.description import RunDescription
from bcp_hpc.experiments.runner import TRUTH_FILE, Setup


def _setup(tmp_path, resume, seed=0, cycle="P"):
    run = RunDescription.load(None, {"world": {"source": "tiny"}, "model": {"cycle": cycle},
                                     "observations": {"seed": seed}})
    with options_scope(run):
        return Setup(run, out_dir=str(tmp_path), resume=resume)


def test_the_true_state_is_stored_and_read_on_resume(tmp_path, caplog):
    first = _setup(tmp_path, resume=False)
    path = tmp_path / TRUTH_FILE
    with h5py.File(path, "r") as f:
        stored = f["state"][...]
        assert f.attrs["tracers"] and "grid_wet_boxes" in f.attrs["problem"]
    np.testing.assert_array_equal(stored, first.truth_state)
    assert stored.shape == (first.system.nt, first.grid.nwet) and np.all(np.isfinite(stored))
    obs_first = {k: v.copy() for k, v in first.observations.items()}
    first.destroy()

    # resumed: read, not solved (no truth_ steady state runs), the same observations
    with caplog.at_level(logging.INFO, logger="bcp_hpc"):
        again = _setup(tmp_path, resume=True)
    text = caplog.text
    assert "true state read from" in text, text
    np.testing.assert_array_equal(again.truth_state, stored)
    for k, v in obs_first.items():
        np.testing.assert_array_equal(again.observations[k], v)
    again.destroy()


def test_a_stored_truth_of_another_problem_is_solved_again(tmp_path, caplog):
    _setup(tmp_path, resume=False).destroy()
    with h5py.File(tmp_path / TRUTH_FILE, "r") as f:
        stored = f["state"][...]
    # another observation seed is another problem: the truth is solved again (equal values, as it does
    # not depend on the seed) and the file rewritten with the new problem
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bcp_hpc"):
        other = _setup(tmp_path, resume=True, seed=5)
    assert "belongs to another problem or truth; solving it again" in caplog.text, caplog.text
    np.testing.assert_allclose(other.truth_state, stored, rtol=1e-9, atol=0)
    with h5py.File(tmp_path / TRUTH_FILE, "r") as f:
        assert '"seed": 5' in f.attrs["problem"]
    other.destroy()
    # an unreadable file is solved again too, and replaced
    (tmp_path / TRUTH_FILE).write_bytes(b"not HDF5")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bcp_hpc"):
        _setup(tmp_path, resume=True, seed=5).destroy()
    assert "unreadable" in caplog.text
    with h5py.File(tmp_path / TRUTH_FILE, "r") as f:
        np.testing.assert_allclose(f["state"][...], stored, rtol=1e-9, atol=0)
