#!/usr/bin/env bash
# The GPU checks of the speed issue (#9) in one call on a lent GPU machine (README, Speed, "On a
# lent GPU"). Here, first: `.venv/bin/python tools/device_kit.py` (wheels and one pack in .device/).
# There, with carry [".device"]:
#   bash benchmarks/device_run.sh
# It installs the kit's wheels (that machine reaches no package index), prints the device and
# versions, then runs each step of STEPS (default "bench paper"), each cut off at the deadline so
# that whatever finished comes back:
#   bench: benchmarks/gpu.sh (attribution, hull and training tables at 224 px), timed as a whole;
#   paper: `python -m gadlib.reproduce` on the carried pack, both architectures, with notebook 07,
#          in the `paper` profile with n_eval 360 (the issue's whole-run target), timed.
# Everything lands in $OUT (the device tool's folder; build/device elsewhere): log.txt, and
# results.tar.gz with the tables, the run's figures and RUN.json and its executed notebooks (their
# per-cell times, also of a run cut off).
# DEADLINE (seconds for the whole script, default 540) keeps it inside one call's 10 minutes.
# On a CPU, at small sizes, to try the script itself:
#   PYTHON=.venv/bin/python PROFILE=smoke SIZE=32 IMAGES=8 HULL_IMAGES=8 TRAIN_IMAGES=64 bash benchmarks/device_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/device}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
start=$(date +%s)
deadline=${DEADLINE:-540}
left() { echo $((deadline - ($(date +%s) - start))); }
py=${PYTHON:-python3}
kit=.device
pack=$(ls "$kit/data" 2>/dev/null | head -1)
profile=${PROFILE:-paper}
params=${PARAMS:-$([ "$profile" = paper ] && echo "-p n_eval=360")}
work=$(mktemp -d)  # the run folder (models, maps) stays out of the tree; only what comes back is kept
trap 'rm -rf "$work"' EXIT

if ! $py -c "import captum, papermill, ipykernel" 2>/dev/null; then
    [ -d "$kit/wheels" ] || { echo "error: no $kit/wheels: run tools/device_kit.py here and carry .device"; exit 2; }
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
        "$kit"/wheels/*.whl || exit 2
    export PYTHONPATH="$work/site"
fi
# gadlib from the working tree (the machine's torch is its own, not the one pyproject.toml pins)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
command -v nvidia-smi > /dev/null && nvidia-smi -L
$py - <<'EOF'
import platform, torch, torchvision, captum, papermill
print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"captum {captum.__version__}, papermill {papermill.__version__}, "
      f"device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}")
EOF

for step in ${STEPS:-bench paper}; do
    t0=$(date +%s)
    echo "== $step: $(left) s left"
    [ "$(left)" -gt 30 ] || { echo "== $step: skipped, the deadline is near"; continue; }
    case $step in
    bench)
        timeout "$(left)" env PYTHON="$py" bash benchmarks/gpu.sh "$work/bench" ;;
    paper)
        [ -n "$pack" ] || { echo "no pack in $kit/data: run tools/device_kit.py here"; continue; }
        # shellcheck disable=SC2086 # params holds separate -p NAME=VALUE words
        timeout "$(left)" env GAD_RUNS_DIR="$work/runs" GAD_FIGURES_DIR="$work/figures" \
            $py -m gadlib.reproduce --dataset folder --data-dir "$kit/data/$pack" --profile "$profile" \
            --archs resnet18 vgg16 --run-name "device-$pack-$profile" $params ;;
    *) echo "unknown step $step: give bench and/or paper" ;;
    esac
    echo "== $step: exit $?, $(($(date +%s) - t0)) s"
done

kept=$(cd "$work" && ls -d bench figures runs/*/executed 2>/dev/null)
# shellcheck disable=SC2086 # one word per folder
[ -n "$kept" ] && tar czf "$out/results.tar.gz" -C "$work" $kept
echo "== done in $(($(date +%s) - start)) s: $out/log.txt${kept:+, $out/results.tar.gz}"
