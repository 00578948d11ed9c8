#!/usr/bin/env bash
# One prepared check of the CUDA path, for the lent device machine (no network; its own
# python3 with CUDA torch; no finufft, cufinufft, torchkbnufft or tiny-cuda-nn). About
# 3-4 minutes on an H100; every phase has its own time limit, prints as it goes and
# merges its results into $OUT/gpu_check.json.
#
#   here, once (network):  bash benchmarks/fetch_wheels.sh        # fills wheels/ (ignored)
#   device machine:        run(command="bash benchmarks/gpu_check.sh", carry=["wheels"])
#   dry run here (CPU):    DRYRUN=1 PY=/tmp/gpudry/bin/python bash benchmarks/gpu_check.sh
#
# Phases: install (carried wheels, then the project with --no-deps --no-build-isolation),
# environment, the default 1000-step DA-INR fit at 128^2 x 25 frames x 12 coils (time,
# torch.cuda.max_memory_allocated, scores), the CUDA tests (-m cuda, GUI tests ignored),
# a smoke test of every method (stop, checkpoint, resume, render at r = 1.5), each NUFFT
# backend's accuracy and step time, the operator speed table, and the same fit at 384^2.
# DRYRUN=1 runs it all on the CPU at tiny sizes: the commands are the same, the numbers
# are meaningless. PHASES="install tests smoke" (names as below) runs only those.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DRYRUN=${DRYRUN:-0}
OUT=${OUT:-$PWD/out/gpu_check}
mkdir -p "$OUT"
J=$OUT/gpu_check.json
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if [ "$DRYRUN" = 1 ]; then DEV=cpu; DRY=--dry-run; SCALE=3; else DEV=cuda; DRY=; SCALE=1; fi

T0=$SECONDS
want() { [ -z "${PHASES:-}" ] || [[ " $PHASES " == *" $1 "* ]]; }
step() { echo; echo "== [$((SECONDS - T0)) s] $*"; }
# limit SECONDS: a phase's time limit (longer in a dry run on a slow CPU)
limit() { local s=$1; shift; timeout $((s * SCALE)) "$@"; local rc=$?;
  [ $rc = 124 ] && echo "!! timed out after $((s * SCALE)) s: $*"; return $rc; }
note() { # note KEY RC [FILE]: the exit status (and last line of FILE) into the JSON
  "$PY" - "$J" "$1" "$2" "${3:-}" <<'PYEOF'
import json, sys, pathlib
path, key, rc, f = sys.argv[1:5]
p = pathlib.Path(path)
d = json.loads(p.read_text()) if p.exists() else {}
e = d.setdefault(key, {})
e["rc"] = int(rc)
if f and pathlib.Path(f).exists():
    lines = [x for x in pathlib.Path(f).read_text().splitlines() if x.strip()]
    e["summary"] = lines[-1] if lines else ""
p.write_text(json.dumps(d, indent=2))
PYEOF
}

main() {
  want install && {
  step "install: carried wheels, then the project (no index, no dependencies)"
  if ls wheels/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
      wheels/*.whl || return 1
  else
    echo "no wheels/ carried (bash benchmarks/fetch_wheels.sh here, then carry wheels):"
    echo "the torchkbnufft comparison rows will be missing"
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --disable-pip-version-check \
    . || return 1
  "$PY" -c "import dainr, torch; print('dainr', dainr.__version__, 'from', dainr.__file__); \
print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || return 1
  rm -f "$J"
  }

  want env && { step "environment"
  limit 60 "$PY" benchmarks/gpu_check.py env --json "$J" --device $DEV $DRY; }

  want fit_128 && { step "default DA-INR fit: 128^2, 25 frames, 12 coils, 13 spokes/frame, 1000 steps"
  limit 120 "$PY" benchmarks/gpu_check.py fit --json "$J" --key fit_128 --device $DEV $DRY \
    --n 128 --frames 25 --coils 12 --steps 1000; }

  want tests && { step "CUDA tests (-m cuda; tests/gui ignored)"
  limit 150 "$PY" -m pytest -q -m cuda tests --ignore=tests/gui -p no:cacheprovider \
    -o addopts="" --continue-on-collection-errors -rs 2>&1 | tee "$OUT/tests.txt"
  note tests "${PIPESTATUS[0]}" "$OUT/tests.txt"; }

  want smoke && { step "smoke: every method a few steps, stop + checkpoint + resume, render r = 1.5"
  limit 120 "$PY" benchmarks/gpu_check.py smoke --json "$J" --device $DEV $DRY; }

  want operators && { step "NUFFT backends: accuracy and step time"
  limit 90 "$PY" benchmarks/gpu_check.py operators --json "$J" --device $DEV $DRY; }

  want speed && { step "operator speed table (benchmarks/speed.py --quick --no-methods)"
  limit 120 "$PY" benchmarks/speed.py --quick --no-methods --device $DEV \
    --repeats $([ "$DRYRUN" = 1 ] && echo 1 || echo 10) --json "$OUT/speed.json" \
    2>&1 | tee "$OUT/speed.txt"
  note speed_table "${PIPESTATUS[0]}"; }

  want fit_384 && { step "default DA-INR fit: 384^2, 25 frames, 12 coils, 1000 steps"
  limit 180 "$PY" benchmarks/gpu_check.py fit --json "$J" --key fit_384 --device $DEV $DRY \
    --n 384 --frames 25 --coils 12 --steps 1000; }

  step "done; results in $J"
}

main 2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
