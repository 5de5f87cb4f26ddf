#!/usr/bin/env bash
# The GPU checks of the speed issue (#9) on a lent GPU machine (README, Speed, "On a lent GPU"; benchmarks/README.md).
# Here, first: `.venv/bin/python tools/device_kit.py` (wheels and one pack in .device/).
# There, in a call carrying [".device"], with DEADLINE a minute under the call's timeout_s:
#   DEADLINE=540 bash benchmarks/device_run.sh              # the paper run (STEPS=paper)
#   STEPS=bench DEADLINE=... bash benchmarks/device_run.sh  # benchmarks/gpu.sh's tables
#   STEPS="cuda-tests controls-profile bench" ARCHS=resnet18 DEADLINE=... bash benchmarks/device_run.sh
# It installs the kit's wheels (that machine reaches no package index), checks them against the
# image (pip check) and prints the device and versions, then runs each step of STEPS in turn
# while the deadline allows:
#   paper: `python -m gadlib.reproduce` on the carried pack, the architectures of ARCHS (notebook
#          07 for the first, as the runner does), in the `paper` profile with n_eval 360 (the issue's whole-run target: the
#          birds pack has 360 test images) or PROFILE and PARAMS, timed;
#   bench: benchmarks/gpu.sh (attribution, preparation, SmoothGrad, hull, curve, sanity, training and torch.compile tables at 224 px, the last with CUDA graphs too),
#          timed as a whole;
#   cuda-tests: the unit tests that compare the GPU's hulls, masks, ranks, curves and RS with the
#          CPU's, and check that seeded work and the engine's cuDNN setting leave the caller's
#          state as it was (every test that skips without CUDA: tests/test_hulls.py,
#          tests/test_consensus_hulls.py, tests/test_metrics.py, tests/test_seeding.py,
#          tests/test_attributions.py and tests/test_controls.py, -k "cuda or gpu"); fails where
#          torch sees no CUDA GPU (the tests would only skip); its time on a GPU is unmeasured;
#   controls-profile: notebooks 01 to 05 through the runner (--no-controls), then notebook 07's
#          stage calls under cProfile for the first architecture of ARCHS, the one the runner
#          runs notebook 07 for (tools/profile_stages.py --stages 07):
#          where the controls spend their time, which a cut `paper` step cannot tell.
# ARCHS (default "resnet18 vgg16") names the architectures of paper and controls-profile. WORK
# names the run folder's parent (default: a new temporary folder, removed at the end): with a
# fixed WORK, a second call on the still-warm machine resumes the chain from the models and maps
# the first one cached.
# Everything lands in $OUT (the device tool's folder; build/device elsewhere): log.txt, and
# results.tar.gz (the tables, the run's figures and RUN.json, its executed notebooks with their
# per-cell times), rewritten after each step, so a call cut short still brings back the steps
# that ended. Exit status: 0 if every step finished, else the last failing step's (124: cut at
# the deadline).
# On a CPU, at small sizes, to try the script itself:
#   PYTHON=.venv/bin/python PROFILE=smoke SIZE=32 IMAGES=8 SMOOTH_IMAGES=8 HULL_IMAGES=8 TRAIN_IMAGES=64 bash benchmarks/device_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/device}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
tee_pid=$!
start=$(date +%s)
deadline=${DEADLINE:-540}
left() { echo $((deadline - ($(date +%s) - start))); }
py=${PYTHON:-python3}
kit=.device
pack=$(ls "$kit/data" 2>/dev/null | head -1)
profile=${PROFILE:-paper}
# separate -p NAME=VALUE words, never globbed
read -r -a params <<< "${PARAMS-$([ "$profile" = paper ] && echo "-p n_eval=360")}"
archs=${ARCHS:-resnet18 vgg16}
# the run folder (models, maps) stays out of the tree; only what comes back is kept
if [ -n "${WORK:-}" ]; then
    # absolute: the notebooks' kernels run in notebooks/; this call's tables and profiles only
    work=$(realpath -m "$WORK") keep_work=1
    mkdir -p "$work" && rm -rf "$work/bench" "$work/profile"
else
    work=$(mktemp -d) keep_work=0
fi
status=0

finish() {
    [ "$keep_work" = 1 ] || rm -rf "$work"
    exec >&- 2>&-
    wait "$tee_pid"  # the log's last lines reach log.txt before the call returns
}
trap finish EXIT

pack_results() {
    local kept
    kept=$(cd "$work" && ls -d bench profile figures runs/*/executed 2>/dev/null)
    [ -n "$kept" ] || return 0
    # shellcheck disable=SC2086 # one word per folder
    tar czf "$out/results.tar.gz" -C "$work" $kept
    # the device tool brings back files of at most 16 MiB: the figures go first
    if [ "$(stat -c %s "$out/results.tar.gz")" -gt $((15 * 2**20)) ]; then
        # shellcheck disable=SC2086
        tar czf "$out/results.tar.gz" -C "$work" --exclude='*.png' $kept
    fi
}

if ! $py -c "import captum, papermill, ipykernel" 2>/dev/null; then
    [ -d "$kit/wheels" ] || { echo "error: no $kit/wheels: run tools/device_kit.py here and carry .device"; exit 2; }
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
        "$kit"/wheels/*.whl || exit 2
    export PYTHONPATH="$work/site"
fi
# gadlib from the working tree (the machine's torch is its own, not the one pyproject.toml pins)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# the kit's versions are those of .venv; a requirement the image meets at another version shows here
$py -m pip check 2>&1 | grep -v "^No broken requirements" | sed 's/^/pip check: /'
command -v nvidia-smi > /dev/null && nvidia-smi -L
$py - <<'EOF'
import platform, torch, torchvision, captum, papermill
print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"captum {captum.__version__}, papermill {papermill.__version__}, "
      f"device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}")
EOF

# the runner's chain on the carried pack, with any extra runner arguments
chain() {
    [ -n "$pack" ] || { echo "no pack in $kit/data: run tools/device_kit.py here"; return 2; }
    # shellcheck disable=SC2086 # one word per architecture
    timeout -k 10 "$(left)" env GAD_RUNS_DIR="$work/runs" GAD_FIGURES_DIR="$work/figures" \
        "$py" -m gadlib.reproduce --dataset folder --data-dir "$kit/data/$pack" --profile "$profile" \
        --archs $archs --run-name "device-$pack-$profile" "${params[@]}" "$@"
}

# notebooks 01-05 through the runner, then notebook 07's stage calls under cProfile for the
# first architecture (the one the runner runs notebook 07 for); 124: cut at the deadline
controls_profile() {
    local arch=${archs%% *} code
    chain --no-controls || return
    [ "$(left)" -gt 10 ] || { echo "notebook 07 ($arch): skipped, $(left) s left"; return 124; }
    mkdir -p "$work/profile"
    timeout -k 10 "$(left)" env TQDM_DISABLE=1 GAD_RUNS_DIR="$work/runs" GAD_FIGURES_DIR="$work/figures" \
        "$py" tools/profile_stages.py --dataset folder --data-dir "$kit/data/$pack" --profile "$profile" \
        --arch "$arch" --run-name "device-$pack-$profile" "${params[@]}" --stages 07 --top 40 \
        > "$work/profile/07_$arch.txt" 2>&1
    code=$?
    grep -o "notebook 07 (.*" "$work/profile/07_$arch.txt" || echo "notebook 07 ($arch): exit $code"
    return "$code"
}

for step in ${STEPS:-paper}; do
    t0=$(date +%s)
    if [ "$(left)" -le 30 ]; then
        echo "== $step: skipped, $(left) s left before the deadline"
        status=124
        continue
    fi
    echo "== $step: $(left) s left"
    case $step in
    paper)
        chain ;;
    controls-profile)
        controls_profile ;;
    bench)
        timeout -k 10 "$(left)" env PYTHON="$py" bash benchmarks/gpu.sh "$work/bench" ;;
    cuda-tests)
        # the tests that compare the GPU's exact stages with the CPU's; without CUDA they would
        # only skip, so the step fails there instead of passing
        if "$py" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
            timeout -k 10 "$(left)" "$py" -m pytest -q -rs -p no:cacheprovider tests/test_hulls.py \
                tests/test_consensus_hulls.py tests/test_metrics.py tests/test_seeding.py \
                tests/test_attributions.py tests/test_controls.py -k "cuda or gpu"
        else
            echo "cuda-tests: torch sees no CUDA GPU here, so the tests would only skip"
            false
        fi ;;
    *)
        echo "unknown step $step: give paper, controls-profile, bench and/or cuda-tests"
        false ;;
    esac
    code=$?
    [ "$code" -eq 0 ] || status=$code
    echo "== $step: exit $code, $(($(date +%s) - t0)) s"
    pack_results
done
echo "== done in $(($(date +%s) - start)) s, exit $status: $out/log.txt$([ -f "$out/results.tar.gz" ] && echo ", $out/results.tar.gz")"
exit "$status"
