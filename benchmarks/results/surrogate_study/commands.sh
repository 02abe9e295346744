#!/bin/bash
# the study as run for issue 13 (CPU-limited subset; every call appends to the same results.jsonl)
set -e
cd "$(dirname "$0")/../../.."

O=benchmarks/results/surrogate_study
R="python benchmarks/surrogate_study.py --out $O --workers 2"
# 0. reset x start steepness, fixed vs adaptive (fast_sigmoid)
$R --families fast_sigmoid --steepness 0.05 8 512 --resets diff detach --modes fixed adaptive --seeds 0
# 1. shape x steepness (fixed, differentiable reset)
$R --families atan sigmoid triangle --steepness 0.05 8 512 --resets diff --modes fixed --seeds 0
$R --families fast_sigmoid --steepness 0.5 2 32 128 --resets diff --modes fixed --seeds 0
# 2. modes from both extremes (fast_sigmoid, differentiable reset)
$R --families fast_sigmoid --steepness 0.05 512 --resets diff --modes learnable annealed adaptive --seeds 0
# 3. second seed for the target comparison
$R --families fast_sigmoid --steepness 8 --resets diff --modes fixed --seeds 1
$R --families fast_sigmoid --steepness 0.05 512 --resets diff --modes adaptive --seeds 1
# 4. adaptive for the other families from beta 512
$R --families atan sigmoid triangle --steepness 512 --resets diff --modes adaptive --seeds 0
# 5. sensitivity to the target fraction q
$R --families fast_sigmoid --steepness 512 --resets diff --modes adaptive --seeds 0 --fraction 0.05
$R --families fast_sigmoid --steepness 512 --resets diff --modes adaptive --seeds 0 --fraction 0.5
# 6. DigitEvents (CLI default model): fixed vs adaptive vs learnable from the default alpha
$R --datasets digits --families atan fast_sigmoid --steepness 2 --resets diff detach --modes fixed adaptive --seeds 0 1
$R --datasets digits --families fast_sigmoid --steepness 25 512 --resets diff --modes fixed adaptive --seeds 0
$R --datasets digits --families atan --steepness 2 --resets diff --modes learnable --seeds 0
echo STUDY DONE
