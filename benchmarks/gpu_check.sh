#!/usr/bin/env bash
# One prepared check for a CUDA machine (all within ~5 minutes):
#   1. the CUDA tests (cufinufft / tiny-cuda-nn paths skip cleanly when absent),
#   2. the speed table on the GPU,
#   3. a full default DA-INR fit of a cardiac-sized phantom with time and allocator peak.
# Usage: bash benchmarks/gpu_check.sh   (from the repository root; creates .venv-gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if [ ! -x .venv-gpu/bin/python ]; then
  $PY -m venv .venv-gpu
  .venv-gpu/bin/pip install -q --upgrade pip
  # A CUDA build of torch: whatever the machine's pip resolves (not the CPU pin of the Makefile).
  .venv-gpu/bin/pip install -q torch || exit 1
  .venv-gpu/bin/pip install -q -e ".[test]" || exit 1
  .venv-gpu/bin/pip install -q cufinufft || echo "cufinufft unavailable: its tests will skip"
fi
B=.venv-gpu/bin
$B/python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
echo "== CUDA tests"
timeout 120 $B/python -m pytest -q -m "cuda" tests -p no:xvfb -o addopts="" 2>&1 | tail -15
echo "== speed table"
timeout 120 $B/python benchmarks/speed.py --quick --device cuda --fit-steps 200 2>&1 | tail -25
echo "== full default DA-INR fit (128^2, 25 frames, 12 coils, 13 spokes/frame, 1000 steps)"
timeout 120 $B/python - <<'PYEOF'
import time, torch, dainr
from dainr.simulate import cardiac_phantom, birdcage_maps
from dainr.simulate.acquire import acquire_series
from dainr.metrics import score_series
ref = cardiac_phantom(n=128, n_frames=25)
data = acquire_series(ref, birdcage_maps(12, (128, 128)), 13, noise_level=0.01)
t = time.perf_counter()
r = dainr.reconstruct(data, "dainr", device="cuda")
print(f"fit {r.seconds:.1f} s (wall {time.perf_counter() - t:.1f} s), max_memory_allocated "
      f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
print(score_series(r.frames, ref))
PYEOF
