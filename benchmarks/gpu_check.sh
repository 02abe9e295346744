#!/usr/bin/env bash
# The GPU check of the fused kernels (issue 11), < 6 minutes on one GPU.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh            # on a machine with CUDA
#   OUT=/tmp/gc   bash benchmarks/gpu_check.sh --dry-run  # CPU-only: same steps, tiny sizes
#   (PYTHON=... picks the interpreter; GPU_CHECK_SKIP_TESTS=1 skips step 2)
#
# 1. installs what is missing (triton, numba, the peers) from wheels carried in the tree
#    (benchmarks/wheels/*.whl or shared/wheels/*.whl) -- the GPU machine has no network;
# 2. runs the kernel tests on CUDA (pytest -m cuda tests/kernels: the LIF/LI/ALIF scans and the
#    fused fake quantizer, Triton, every mode and gradient vs the torch backends; the LIF
#    save_dtype kernel; the torch.library ops under torch.compile(fullgraph) with Dynamo,
#    aot_eager and inductor, and opcheck);
# 3. benchmarks/lif_roofline.py (T=64 B=64 N=65536, float32 and float16, save_dtype none and
#    bfloat16, triton and torch);
# 4. benchmarks/neurons_peers.py --device cuda (all peers that import) at T=64 B=64 N=65536
#    float32 and float16, and T=100 B=32 N=512;
# 5. benchmarks/train_peers.py --device cuda (2 epochs);
# every table goes to $OUT/*.md, logs to $OUT/*.log. Each step has its own time limit (100+30+50+2x55+55
# = 345 s at most), and a
# failing step does not stop the later ones (the exit status is that of the tests).
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
OUT="${OUT:-$(pwd)/gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
log() { echo "[gpu_check $(date +%T)] $*" | tee -a "$OUT/gpu_check.log"; }

# ---------------------------------------------------------------- 1. environment
{
  echo "date: $(date -u)"; echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" - <<'PYEOF'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name())
for m in ("triton", "numba", "snntorch", "spikingjelly", "norse", "sinabs"):
    try:
        print(m, importlib.import_module(m).__version__ if hasattr(importlib.import_module(m), "__version__") else "?")
    except Exception as e:  # noqa: BLE001
        print(m, "missing:", type(e).__name__)
PYEOF
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

WHEELS=""
for d in benchmarks/wheels shared/wheels; do [[ -d "$d" ]] && WHEELS="$WHEELS --find-links $d"; done
if [[ -n "$WHEELS" && $DRY -eq 0 ]]; then
  log "installing missing packages from$WHEELS"
  for m in triton numba pytest snntorch spikingjelly norse sinabs; do
    "$PY" -c "import $m" 2>/dev/null || timeout 60 "$PY" -m pip install --no-index $WHEELS --no-deps "$m" >>"$OUT/install.log" 2>&1 || true
  done
fi

if [[ $DRY -eq 1 ]]; then
  # --interleave: one process for every row (the dry run's cost is mostly Python start-ups)
  DEV=cpu; SIZES="4,2,8"; RF="--dry-run"; LIBS="surrogate_nets"; OURS="auto,torch"; IL="--interleave"
  TESTSEL=(-k "test_every_builtin_family_has_a_triton_form or test_triton_every_mode_matches_torch and subtract-False-False-1 or test_binary_and_pact or test_compile_traces_one_op_without_graph_break and quant_alif or test_opcheck_every_op or test_save_dtype_matches_torch_save_dtype and subtract-False-False-1")
else
  DEV=cuda; SIZES="64,64,65536;100,32,512"; RF=""; IL=""; LIBS="surrogate_nets,snntorch,spikingjelly,norse,sinabs"; OURS="auto,torch"
  TESTSEL=()
fi

# ---------------------------------------------------------------- 2. tests
TEST_RC=0
if [[ "${GPU_CHECK_SKIP_TESTS:-0}" == "1" ]]; then
  log "kernel tests skipped (GPU_CHECK_SKIP_TESTS=1)"
else
  log "kernel tests ($DEV)"
  timeout 100 "$PY" -m pytest -q -m cuda tests/kernels "${TESTSEL[@]}" -p no:cacheprovider > "$OUT/tests.log" 2>&1
  TEST_RC=$?
  tail -3 "$OUT/tests.log"
  if [[ $DRY -eq 0 ]]; then
    # the opt-in triton_op wrapping (inductor sees into the kernels); informative, not in the status
    log "compile tests with SURROGATE_NETS_TRITON_OPAQUE=0 (triton_op)"
    SURROGATE_NETS_TRITON_OPAQUE=0 timeout 30 "$PY" -m pytest -q -m cuda tests/kernels/test_triton_ops.py \
      -p no:cacheprovider > "$OUT/tests_triton_op.log" 2>&1
    tail -3 "$OUT/tests_triton_op.log"
  fi
fi

# ---------------------------------------------------------------- 3. roofline
log "roofline"
timeout 50 "$PY" benchmarks/lif_roofline.py $RF > "$OUT/roofline.md" 2> "$OUT/roofline.log"
cat "$OUT/roofline.md"

# ---------------------------------------------------------------- 4. neurons vs peers
for DT in float32 float16; do
  [[ $DRY -eq 1 && $DT == float16 ]] && continue
  log "neurons_peers $DEV $DT"
  timeout 55 "$PY" benchmarks/neurons_peers.py --device $DEV --dtype $DT --sizes "$SIZES" \
    --libs "$LIBS" --ours "$OURS" $IL --repeat $([[ $DRY -eq 1 ]] && echo 1 || echo 7) \
    --out "$OUT/neurons_$DT.md" > "$OUT/neurons_$DT.log" 2>&1
  cat "$OUT/neurons_$DT.md" 2>/dev/null
done

# ---------------------------------------------------------------- 5. training step vs peers
if [[ $DRY -eq 1 ]]; then
  "$PY" benchmarks/train_peers.py --help > "$OUT/train.log" 2>&1 && echo "train_peers --help ok" > "$OUT/train.md"
else
  log "train_peers cuda"
  timeout 55 "$PY" benchmarks/train_peers.py --device cuda --epochs 2 --out "$OUT/train.md" > "$OUT/train.log" 2>&1
  cat "$OUT/train.md" 2>/dev/null
fi
log "done (tests rc=$TEST_RC); tables in $OUT"
exit $TEST_RC
