#!/usr/bin/env bash
# The GPU-size speed measurements of benchmarks/README.md, in one go (a few minutes on one
# H100 or H200). Each table is also written to OUTDIR (default build/benchmarks).
#   bash benchmarks/gpu.sh [OUTDIR]
# SIZE, IMAGES, SMOOTH_IMAGES, HULL_IMAGES, CURVE_IMAGES, COMPILE_IMAGES and TRAIN_IMAGES override the sizes (small values try the script on a CPU).
set -uo pipefail
# One table that fails (out of memory, say) is reported and the next ones still run: each costs GPU
# minutes a session has few of. The exit status is 1 if any failed.
out=${1:-build/benchmarks}
py=${PYTHON:-python}
size=${SIZE:-224}
mkdir -p "$out"
status=0
table() {  # table NAME speed.py-arguments...: the table to stdout and to $out/NAME.txt
    local name=$1
    shift
    $py benchmarks/speed.py "$@" | tee "$out/$name.txt" || { echo "== table $name failed"; status=1; }
}
table attributions --stage attributions --size "$size" --images "${IMAGES:-128}" --ig-steps 50
table attributions_bf16 --stage attributions --size "$size" --images "${IMAGES:-128}" --ig-steps 50 --archs resnet18 \
    --precision bf16
table preparation --stage preparation --size "$size" --images 4 --models 5
# SmoothGrad (notebook 07): ResNet18, one timed run (captum's side is the slow one)
table smoothgrad --stage smoothgrad --size "$size" --images "${SMOOTH_IMAGES:-64}" --ig-steps 50 --archs resnet18 --reps 1
table hulls --stage hulls --size "$size" --images "${HULL_IMAGES:-64}"
# notebook 07's deletion and insertion curves, ResNet18 (the runner's notebook 07 architecture)
table curves --stage curves --size "$size" --images "${CURVE_IMAGES:-32}" --archs resnet18
# notebook 07's sanity check: its rank correlations (16 images, as the cascade explains)
table sanity --stage sanity --size "$size" --images 16
table training --stage training --size "$size" --train-images "${TRAIN_IMAGES:-1024}" --workers 8 --synthetic
# torch.compile of the prepared model against the eager engine, ResNet18, last (its first call compiles: a minute or more)
table compile --stage compile --size "$size" --images "${COMPILE_IMAGES:-64}" --ig-steps 50 --archs resnet18 --reps 1
# the same with CUDA graphs (torch.compile's reduce-overhead mode), apart, so that a deadline cut here keeps the row above
table compile_reduce_overhead --stage compile --size "$size" --images "${COMPILE_IMAGES:-64}" --ig-steps 50 \
    --archs resnet18 --reps 1 --compile-modes reduce-overhead
exit $status
