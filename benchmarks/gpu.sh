#!/usr/bin/env bash
# The GPU-size speed measurements of benchmarks/README.md, in one go (a few minutes on one
# H100 or H200). Each table is also written to OUTDIR (default build/benchmarks).
#   bash benchmarks/gpu.sh [OUTDIR]
# SIZE, IMAGES, SMOOTH_IMAGES, HULL_IMAGES, CURVE_IMAGES, COMPILE_IMAGES and TRAIN_IMAGES override the sizes (small values try the script on a CPU).
set -euo pipefail
out=${1:-build/benchmarks}
py=${PYTHON:-python}
size=${SIZE:-224}
mkdir -p "$out"
$py benchmarks/speed.py --stage attributions --size "$size" --images "${IMAGES:-128}" --ig-steps 50 | tee "$out/attributions.txt"
$py benchmarks/speed.py --stage attributions --size "$size" --images "${IMAGES:-128}" --ig-steps 50 --archs resnet18 \
    --precision bf16 | tee "$out/attributions_bf16.txt"
$py benchmarks/speed.py --stage preparation --size "$size" --images 4 --models 5 | tee "$out/preparation.txt"
# SmoothGrad (notebook 07): ResNet18, one timed run (captum's side is the slow one)
$py benchmarks/speed.py --stage smoothgrad --size "$size" --images "${SMOOTH_IMAGES:-64}" --ig-steps 50 --archs resnet18 \
    --reps 1 | tee "$out/smoothgrad.txt"
$py benchmarks/speed.py --stage hulls --size "$size" --images "${HULL_IMAGES:-64}" | tee "$out/hulls.txt"
# notebook 07's deletion and insertion curves, ResNet18 (the runner's notebook 07 architecture)
$py benchmarks/speed.py --stage curves --size "$size" --images "${CURVE_IMAGES:-32}" --archs resnet18 | tee "$out/curves.txt"
# notebook 07's sanity check: its rank correlations (16 images, as the cascade explains)
$py benchmarks/speed.py --stage sanity --size "$size" --images 16 | tee "$out/sanity.txt"
$py benchmarks/speed.py --stage training --size "$size" --train-images "${TRAIN_IMAGES:-1024}" --workers 8 \
    --synthetic | tee "$out/training.txt"
# torch.compile of the prepared model against the eager engine, ResNet18, last (its first call compiles: a minute or more)
$py benchmarks/speed.py --stage compile --size "$size" --images "${COMPILE_IMAGES:-64}" --ig-steps 50 --archs resnet18 \
    --reps 1 | tee "$out/compile.txt"
# the same with CUDA graphs (torch.compile's reduce-overhead mode), apart, so that a deadline cut here keeps the row above
$py benchmarks/speed.py --stage compile --size "$size" --images "${COMPILE_IMAGES:-64}" --ig-steps 50 --archs resnet18 \
    --reps 1 --compile-modes reduce-overhead | tee "$out/compile_reduce_overhead.txt"
