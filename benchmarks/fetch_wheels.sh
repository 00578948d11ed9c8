#!/usr/bin/env bash
# Fill wheels/ (git-ignored) with the pure-Python wheels that benchmarks/gpu_check.sh
# installs on the device machine, which has no network. Everything else the project
# needs at run time (numpy, scipy, h5py, psutil, tqdm, typing-extensions, pytest,
# scikit-image, setuptools)
# is in that machine's image (.library/device/KINDS.md); finufft, cufinufft and
# tiny-cuda-nn are compiled and not carried: the GPU path runs without them.
# Usage, here with network: bash benchmarks/fetch_wheels.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PY:-python3}}
mkdir -p wheels
# torchkbnufft: a second GPU NUFFT to compare with in the speed table; ismrmrd and its
# xsdata: raw scanner input, a core dependency (its tests import it at collection).
WHEELS=("torchkbnufft==1.5.2" "ismrmrd==1.15.0" "xsdata==26.10")
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  -d wheels "${WHEELS[@]}"
for w in wheels/*.whl; do
  case "$w" in *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
    *) echo "not a pure-Python wheel: $w" >&2; exit 1 ;;
  esac
done
ls -l wheels
