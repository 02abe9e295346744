#!/usr/bin/env bash
# Step 1 of the GPU check (issue 11), run HERE, on a machine that reaches PyPI: fetch the wheels
# that the GPU machine lacks into benchmarks/wheels (git-ignored; never commit them), so that
# step 2 -- the device `run` tool with carry=["benchmarks/wheels"] and the command
# `OUT=$OUT bash benchmarks/gpu_check.sh` -- can install them there with no network.
#
#   bash benchmarks/gpu_prepare.sh               # default set, for the GPU machine's Python 3.12
#   bash benchmarks/gpu_prepare.sh --list        # print the pinned install order; no network
#   bash benchmarks/gpu_prepare.sh --no-mpl      # leave out the matplotlib stack (smaller carry)
#   GPU_PREP_PYVER=3.11 GPU_PREP_DEST=/tmp/w bash benchmarks/gpu_prepare.sh   # other Python/folder
#
# What is fetched (pinned; install order = dependency order, as gpu_check.sh installs them):
# * our package needs nothing: `import surrogate_nets` and everything the check runs import only
#   torch, numpy, tqdm (+ triton, pytest, hypothesis for the tests), all in the GPU image;
# * the four peers the benchmarks import and each one's IMPORT-TIME needs for the modules they use,
#   found by experiment (a venv with only torch/numpy/tqdm/pytest/hypothesis/h5py/triton, these
#   wheels installed with --no-index --no-deps, then the benchmarks' imports, then each wheel
#   left out in turn):
#     snntorch (snntorch, snntorch.surrogate)                        -> nothing more
#     spikingjelly (activation_based.functional/neuron/surrogate/layer) -> loguru
#     norse (norse.torch)                                            -> nir, nirtorch (no torchvision;
#         matplotlib only if installed, then it must import whole)
#     sinabs (sinabs.activation, sinabs.layers)                      -> pbr, nir, nirtorch, and
#         matplotlib (sinabs/__init__ imports sinabs.network, which imports pylab)
#   (sinabs asks for nir<=1.0.4 and samna; nir 1.0.8 is what the CPU tables ran with, and samna
#   is not imported by these modules)
# * matplotlib (binary cp3XX wheels) is in the GPU image as its package list reads, so
#   gpu_check.sh skips it there; it is carried anyway (~23 MB) in case that list is stale, since
#   without it the sinabs rows are lost. --no-mpl leaves it out (then ~4.5 MB in all).
# * not carried: torch/torchvision/torchaudio (none of these imports needs them), numba (CPU only,
#   in the image; with llvmlite its wheels are tens of MB).
# Norse 1.1.0 is published as an sdist only: it is built here into a pure-Python wheel.
# The tree plus this wheelhouse must stay under the run tool's 64 MiB; the script checks it.
set -euo pipefail
cd "$(dirname "$0")/.."

# name==version, in install (dependency) order; "pure" wheels are py3-none-any
PURE=(
  loguru==0.7.3
  pbr==7.1.3
  nir==1.0.8
  nirtorch==2.6
  snntorch==1.0.0
  spikingjelly==2.0.0
  norse==1.1.0
  sinabs==3.1.3
)
# matplotlib 3.11.2 and its import-time needs beyond numpy/packaging (binary: per Python version);
# not contourpy, which matplotlib imports only when contouring (checked: sinabs imports without it)
MPL=(
  six==1.17.0
  python-dateutil==2.9.0.post0
  pyparsing==3.3.3
  cycler==0.12.1
  kiwisolver==1.5.1
  fonttools==4.68.0
  pillow==13.0.0
  matplotlib==3.11.2
)
SDIST_ONLY=" norse "   # built with `pip wheel` (pure Python)

WITH_MPL=1
LIST=0
for a in "$@"; do
  case "$a" in
    --list) LIST=1 ;;
    --no-mpl) WITH_MPL=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | cut -c3-; exit 0 ;;
    *) echo "gpu_prepare.sh: unknown argument '$a' (expected --list, --no-mpl or --help)" >&2; exit 2 ;;
  esac
done
ALL=()
[[ $WITH_MPL -eq 1 ]] && ALL+=("${MPL[@]}")
ALL+=("${PURE[@]}")
if [[ $LIST -eq 1 ]]; then
  printf '%s\n' "${ALL[@]}"
  exit 0
fi

PY="${GPU_PREP_PY:-python3}"
PYVER="${GPU_PREP_PYVER:-3.12}"          # the GPU image's python3 is 3.12
DEST="${GPU_PREP_DEST:-benchmarks/wheels}"
mkdir -p "$DEST"
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# pip's configured extra indexes/find-links/constraints of this machine play no part here
export PIP_CONSTRAINT="" PIP_FIND_LINKS="" PIP_EXTRA_INDEX_URL=""
for spec in "${ALL[@]}"; do
  name="${spec%%==*}"
  if [[ "$SDIST_ONLY" == *" $name "* ]]; then
    "$PY" -m pip wheel -q --no-deps --no-cache-dir -w "$DEST" "$spec"
  else
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
      --implementation cp "${PLAT[@]}" -d "$DEST" "$spec"
  fi
done
# one version of each: wheels of other versions left from earlier runs would stop the install
keep=" "
for spec in "${ALL[@]}"; do
  n="${spec%%==*}"; keep+="$(echo "$n" | tr 'A-Z-' 'a-z_')-${spec##*==}-* "
done
for f in "$DEST"/*.whl; do
  b="$(basename "$f" | tr 'A-Z' 'a-z')"; ok=0
  for k in $keep; do [[ "$b" == $k ]] && ok=1; done
  # and built for this Python (a cp311 wheel left by a GPU_PREP_PYVER=3.11 run goes)
  [[ "$b" == *-none-any.whl || "$b" == *-cp${PYVER//./}-* ]] || ok=0
  [[ $ok -eq 1 ]] || { echo "removing stale $f"; rm -f "$f"; }
done
ls -l "$DEST"
W=$(cat "$DEST"/*.whl | wc -c)
T=$(git ls-files -z | xargs -0 cat 2>/dev/null | wc -c)
echo "wheelhouse: $W bytes in $(ls "$DEST"/*.whl | wc -l) wheels; tree (git ls-files): $T bytes;"
echo "together $((W + T)) bytes of the run tool's 64 MiB = 67108864"
[[ $((W + T)) -lt 67108864 ]] || { echo "gpu_prepare.sh: over the 64 MiB carry limit" >&2; exit 1; }
