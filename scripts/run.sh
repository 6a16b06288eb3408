#!/usr/bin/env bash
# The main job on the embedded default world (sets up what is missing first).
# Extra arguments go to `bcp-hpc run` (e.g. --out DIR, PETSc options).  NP ranks (default 2).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash "$here/scripts/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
NP="${NP:-2}"
exec mpirun -n "$NP" "${BCP_VENV:-$here/.venv}/bin/bcp-hpc" run "$@"
