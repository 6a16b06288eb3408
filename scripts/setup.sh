#!/usr/bin/env bash
# Idempotent set-up for bcp-hpc.
#  * If petsc4py already imports for the chosen Python (a cluster module or a
#    user's own PETSc build), nothing is installed system-wide.
#  * Otherwise, on Debian/Ubuntu as root, Debian's PETSc/SLEPc/MPI/h5py/SciPy
#    packages are installed with apt-get (never built by pip).
#  * A virtual environment (.venv, --system-site-packages) then holds bcp-hpc
#    (editable) and its pure-Python extras.
# Re-running it does nothing when everything is already in place.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
VENV="${BCP_VENV:-$here/.venv}"
APT_PACKAGES="python3-petsc4py python3-slepc4py python3-mpi4py python3-h5py python3-scipy python3-venv openmpi-bin"
# data layer: HDF4 (pyhdf) for satellite NPP, netCDF4 + xarray/h5netcdf (tests write and read real formats)
DATA_PACKAGES="python3-hdf4 python3-netcdf4 python3-xarray python3-h5netcdf python3-matplotlib"

log() { echo "[setup] $*" >&2; }

# The Python that carries petsc4py: BCP_PYTHON if given, else the system one.
PY="${BCP_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY="$(command -v python3)"; fi
fi

petsc_imports() {
  # bcp_hpc's own locator finds Debian's PETSC_DIR when the variable is unset.
  PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" "$1" -c \
    "import bcp_hpc.petsc_env as e; e.import_petsc4py()" >/dev/null 2>&1
}

if ! petsc_imports "$PY"; then
  if [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "petsc4py not importable: installing Debian packages ($APT_PACKAGES)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq $APT_PACKAGES >/dev/null
    PY=/usr/bin/python3
  else
    log "ERROR: petsc4py does not import for $PY and I cannot install Debian packages here."
    log "Load your cluster's PETSc/petsc4py module (or set BCP_PYTHON to a Python that has it) and re-run."
    exit 1
  fi
  petsc_imports "$PY" || { log "ERROR: petsc4py still does not import after installing packages"; exit 1; }
fi

# Data-layer extras: optional where apt is unavailable (the HDF4/NetCDF tests then skip with a reason).
if ! "$PY" -c "import pyhdf.SD, netCDF4, xarray, h5netcdf, matplotlib" >/dev/null 2>&1; then
  if [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing the data-layer packages ($DATA_PACKAGES)"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -qq $DATA_PACKAGES >/dev/null 2>&1 || { apt-get update -qq >/dev/null; apt-get install -y -qq $DATA_PACKAGES >/dev/null; }
  else
    log "note: pyhdf/netCDF4/xarray not importable; HDF4 NPP reading and some data tests are unavailable"
  fi
fi

# Headless Chromium: the tests open the HTML reports in a real browser (they skip with a reason without it).
if ! command -v chromium >/dev/null 2>&1; then
  if [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing chromium (the report tests open report.html in a headless browser)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null 2>&1; } \
      || log "note: chromium could not be installed; the browser tests of the reports will skip"
  fi
fi

if ! command -v mpirun >/dev/null && ! command -v mpiexec >/dev/null; then
  if [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ]; then
    log "installing openmpi-bin"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin >/dev/null
  fi
fi

stamp="$VENV/.bcp-setup-stamp"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -m venv --system-site-packages "$VENV" >/dev/null 2>&1; then
    if [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$VENV"; "$PY" -m venv --system-site-packages "$VENV"
    else
      log "ERROR: cannot create a virtual environment with $PY"; exit 1
    fi
  fi
  log "created virtual environment $VENV"
fi
# --no-build-isolation + no petsc4py in the dependencies: pip never builds PETSc.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test,plot]" >/dev/null \
  || "$VENV/bin/python" -m pip install --disable-pip-version-check -e ".[test,plot]"
echo "$want" > "$stamp"
log "bcp-hpc installed in $VENV"
