#!/usr/bin/env bash
# The GPU check of the fused kernels (issue 11), < 6 minutes on one GPU.
#
# HOW TO RUN IT (a session that is lent the GPU machine; it has no network, so two steps):
#   1. here:   bash benchmarks/gpu_prepare.sh
#              (fetches the peers and their import-time needs, pinned, into benchmarks/wheels,
#               git-ignored, ~27 MB; prints the wheelhouse + tree size, < 64 MiB together)
#   2. device: the `run` tool with carry=["benchmarks/wheels"], timeout_s=420 and the command
#              OUT=$OUT bash benchmarks/gpu_check.sh
#              (the step limits below sum to 355 s, plus the install, ~10 s). What comes back:
#              env.txt, gpu_check.log, roofline.md, neurons_float32.md, neurons_float16.md,
#              train.md, train_step.md and logs.tar.gz (every other log; the tool returns at
#              most 8 files).
#   Then give_back, and put the tables in benchmarks/RESULTS.md with the card's name.
#   Run step 1 in the checkout that `run` sends: the session's own one, also when a helper in
#   another worktree makes the call (the tool sends that checkout, not the helper's).
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh            # on a machine with CUDA
#   OUT=/tmp/gc   bash benchmarks/gpu_check.sh --dry-run  # CPU-only: same steps, tiny sizes
#   (PYTHON=... picks the interpreter; GPU_CHECK_SKIP_TESTS=1 skips step 2;
#    GPU_CHECK_INSTALL_ONLY=1 runs step 1 alone, installing even with --dry-run;
#    GPU_CHECK_SITE=dir is where carried wheels go, default /tmp/gpu_check_site;
#    GPU_CHECK_WHEELS="dir ..." replaces the folders searched for wheels)
#
# 1. installs what is missing from the wheels carried in the tree (benchmarks/wheels/*.whl or
#    shared/wheels/*.whl): pip --no-index --no-deps --target $GPU_CHECK_SITE (put on PYTHONPATH),
#    one wheel at a time in the order `gpu_prepare.sh --list` prints (dependency order), each only
#    when its distribution is not installed yet; then any other wheel found there (numba, ...);
#    every outcome goes to $OUT/install.log and a summary line to gpu_check.log; env.txt then
#    lists the versions and whether each benchmark's peer modules import;
# 2. runs the kernel tests on CUDA (pytest -m cuda tests/kernels: the LIF/LI/ALIF scans and the
#    fused fake quantizer, Triton, every mode and gradient vs the torch backends; the LIF
#    save_dtype kernel; the torch.library ops under torch.compile(fullgraph) with Dynamo,
#    aot_eager and inductor, and opcheck);
# 3. benchmarks/lif_roofline.py (T=64 B=64 N=65536, float32 and float16, save_dtype none and
#    bfloat16, triton and torch);
# 4. benchmarks/neurons_peers.py --device cuda (all peers that import) at T=64 B=64 N=65536
#    float32 and float16, and T=100 B=32 N=512;
# 5. benchmarks/train_peers.py --device cuda (2 epochs);
# 6. benchmarks/train_step_peers.py --device cuda: one whole training step of snnTorch's N-MNIST
#    conv net at B=256 (issue 11's GPU target) vs SpikingJelly and snnTorch;
# every table goes to $OUT/*.md, logs to $OUT/*.log. Each step has its own time limit
# (95+25+45+2x50+45+45 = 355 s at most), and a
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
WHEELDIRS=()
for d in ${GPU_CHECK_WHEELS:-benchmarks/wheels shared/wheels}; do
  compgen -G "$d/*.whl" >/dev/null && WHEELDIRS+=("$d")
done
INSTALL_ONLY="${GPU_CHECK_INSTALL_ONLY:-0}"
if [[ ${#WHEELDIRS[@]} -gt 0 && ( $DRY -eq 0 || $INSTALL_ONLY == 1 ) ]]; then
  SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
  mkdir -p "$SITE"
  export PYTHONPATH="$PYTHONPATH:$SITE"
  log "installing missing packages from ${WHEELDIRS[*]} into $SITE"
  # the wheel file of distribution $1 (any version: gpu_prepare keeps one of each), else ""
  wheel_of() {
    local n; n="$(echo "$1" | tr 'A-Z.-' 'a-z__')"
    for d in "${WHEELDIRS[@]}"; do
      for f in "$d"/*.whl; do
        [[ "$(basename "$f" | tr 'A-Z' 'a-z')" == "$n"-* ]] && { echo "$f"; return; }
      done
    done
  }
  installed() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null; }
  ORDER=$(bash benchmarks/gpu_prepare.sh --list | cut -d= -f1)
  # then the wheels not on the list (e.g. numba, llvmlite put in shared/wheels), in name order
  for d in "${WHEELDIRS[@]}"; do
    for f in "$d"/*.whl; do ORDER+=$'\n'"$(basename "$f" | cut -d- -f1)"; done
  done
  N_OK=0; N_SKIP=0; FAILED=""; SEEN=" "
  for name in $ORDER; do
    key="$(echo "$name" | tr 'A-Z.-' 'a-z__')"
    [[ "$SEEN" == *" $key "* ]] && continue
    SEEN+="$key "
    have="$(installed "$name")"
    if [[ -n "$have" ]]; then
      echo "present  $name $have" >> "$OUT/install.log"; N_SKIP=$((N_SKIP + 1)); continue
    fi
    whl="$(wheel_of "$name")"
    if [[ -z "$whl" ]]; then
      echo "NO WHEEL $name" >> "$OUT/install.log"; FAILED+=" $name(no-wheel)"; continue
    fi
    if timeout 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --disable-pip-version-check --upgrade --target "$SITE" "$whl" >> "$OUT/install.log" 2>&1; then
      echo "ok       $name <- $whl" >> "$OUT/install.log"; N_OK=$((N_OK + 1))
    else
      echo "FAILED   $name <- $whl (rc $?)" >> "$OUT/install.log"; FAILED+=" $name"
    fi
  done
  log "install: $N_OK installed, $N_SKIP already present, failed:${FAILED:- none} (install.log)"
fi
{
  echo "date: $(date -u)"; echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" - <<'PYEOF'
import importlib, importlib.metadata as md
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name())
# the modules the benchmarks import (neurons_peers.py, train_peers.py, tests)
MODS = {"triton": ["triton"], "numba": ["numba"], "snntorch": ["snntorch", "snntorch.surrogate"],
        "spikingjelly": ["spikingjelly.activation_based." + m for m in ("functional", "neuron", "surrogate", "layer")],
        "norse": ["norse.torch"], "sinabs": ["sinabs.activation", "sinabs.layers"]}
for dist, mods in MODS.items():
    try:
        v = md.version(dist)
    except md.PackageNotFoundError:
        v = "not installed"
    try:
        for m in mods:
            importlib.import_module(m)
        print(dist, v, "imports ok")
    except Exception as e:  # noqa: BLE001
        print(dist, v, "import FAILS:", type(e).__name__, e)
PYEOF
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
if [[ $INSTALL_ONLY == 1 ]]; then
  log "GPU_CHECK_INSTALL_ONLY=1: stopping after step 1"
  exit 0
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
  timeout 95 "$PY" -m pytest -q -m cuda tests/kernels "${TESTSEL[@]}" -p no:cacheprovider > "$OUT/tests.log" 2>&1
  TEST_RC=$?
  tail -3 "$OUT/tests.log"
  if [[ $DRY -eq 0 ]]; then
    # the opt-in triton_op wrapping (inductor sees into the kernels); informative, not in the status
    log "compile tests with SURROGATE_NETS_TRITON_OPAQUE=0 (triton_op)"
    SURROGATE_NETS_TRITON_OPAQUE=0 timeout 25 "$PY" -m pytest -q -m cuda tests/kernels/test_triton_ops.py \
      -p no:cacheprovider > "$OUT/tests_triton_op.log" 2>&1
    tail -3 "$OUT/tests_triton_op.log"
  fi
fi

# ---------------------------------------------------------------- 3. roofline
log "roofline"
timeout 45 "$PY" benchmarks/lif_roofline.py $RF > "$OUT/roofline.md" 2> "$OUT/roofline.log"
cat "$OUT/roofline.md"

# ---------------------------------------------------------------- 4. neurons vs peers
for DT in float32 float16; do
  [[ $DRY -eq 1 && $DT == float16 ]] && continue
  log "neurons_peers $DEV $DT"
  timeout 50 "$PY" benchmarks/neurons_peers.py --device $DEV --dtype $DT --sizes "$SIZES" \
    --libs "$LIBS" --ours "$OURS" $IL --repeat $([[ $DRY -eq 1 ]] && echo 1 || echo 7) \
    --out "$OUT/neurons_$DT.md" > "$OUT/neurons_$DT.log" 2>&1
  cat "$OUT/neurons_$DT.md" 2>/dev/null
done

# ---------------------------------------------------------------- 5. training step vs peers
if [[ $DRY -eq 1 ]]; then
  "$PY" benchmarks/train_peers.py --help > "$OUT/train.log" 2>&1 && echo "train_peers --help ok" > "$OUT/train.md"
else
  log "train_peers cuda"
  timeout 45 "$PY" benchmarks/train_peers.py --device cuda --epochs 2 --out "$OUT/train.md" > "$OUT/train.log" 2>&1
  cat "$OUT/train.md" 2>/dev/null
fi
if [[ $DRY -eq 1 ]]; then
  STEP=(--device cpu --batch 2 --repeat 1 --warmup 1 --libs "")
else
  STEP=(--device cuda --batch 256 --repeat 11 --warmup 3 --libs spikingjelly,snntorch)
fi
log "train_step_peers $DEV (conv net)"
timeout 45 "$PY" benchmarks/train_step_peers.py --workloads nmnist-conv --no-bf16 "${STEP[@]}" \
  --out "$OUT/train_step.md" > "$OUT/train_step.log" 2>&1
cat "$OUT/train_step.md" 2>/dev/null
log "done (tests rc=$TEST_RC); tables in $OUT"
# the device tool brings back at most 8 files from $OUT: keep the tables, env.txt and
# gpu_check.log loose, the other logs (tests, install, each step's stderr) in one logs.tar.gz
( cd "$OUT" && L=$(ls *.log 2>/dev/null | grep -v '^gpu_check.log$') && [[ -n "$L" ]] &&
  tar czf logs.tar.gz $L && rm -f $L ) || true
exit $TEST_RC
