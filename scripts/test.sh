#!/usr/bin/env bash
# The test command (sets up what is missing first): one pytest session that runs the serial suite and, through
# tests/test_mpi_suites.py, the MPI suite (tests/mpi) under mpirun on 1, 2 and 4
# (oversubscribed) ranks: the fast tier and the tests marked slow.  Arguments go to pytest, e.g.
# `bash scripts/test.sh -m "not slow"` (the fast tier, about four minutes on 2 cores) or `tests/cycles`.
# It ends with pytest's own summary line and exits non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash "$here/scripts/setup.sh"
PY="${BCP_VENV:-$here/.venv}/bin/python"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# Avoid BLAS threads fighting MPI ranks for the two cores.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$PY" -m pytest -p no:cacheprovider tests "$@"
rc=$?
# pytest exits 5 when nothing was collected: treat as failure (a suite must run).
exit $rc
