"""What a lent GPU machine needs to run gadlib, gathered in .device/ (git-ignored) to travel with
the working tree: wheels of the packages its image lacks, and one real-image pack.

    .venv/bin/python tools/device_kit.py                  # wheels for Python 3.12 + the birds pack
    .venv/bin/python tools/device_kit.py --list           # only print the packages it would fetch

The machine (/work/.library/device, kind nvidia-h200) reaches no package index and has no
../shared beside the repository. Its image already holds torch, torchvision, numpy, pandas,
matplotlib, seaborn, scikit-image and much more (DEVICE_HAS, from KINDS.md, read 2026-11-17); it
lacks captum and the notebook stack (Papermill, ipykernel, nbformat, ...). The packages fetched
are the closure of ROOTS' requirements in this .venv, less what the image holds, at the versions
installed here (the ones the tests ran with), as wheels for the machine's Python and platform.
`benchmarks/device_run.sh` installs them there (`--target`, no index) and runs the GPU checks.

Only one pack fits: the working tree, the wheels and the data travel together, 64 MiB at most.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / ".device"
LIMIT = 64 * 2**20  # what may travel with one call, the working tree included

# What a notebook chain (`python -m gadlib.reproduce`) and the benchmarks import beyond the image.
ROOTS = ["captum", "papermill", "nbformat", "nbclient", "ipykernel", "ipywidgets", "jupyter_client"]
# Front-end assets only (JupyterLab's widget manager): a headless kernel never loads them. And
# IPython's completion (jedi, with parso) and the kernel's debugger (debugpy), which both import
# only if there: the notebook chain ran without them (2026-12-07, the two moved out of .venv for
# a smoke run), and their 9 MB had brought the kit with the working tree to 65.8 MiB, over LIMIT.
# The machine's `pip check` names them as missing; device_run.sh shows that and goes on.
SKIP = {"widgetsnbextension", "jupyterlab-widgets", "jedi", "debugpy"}

# A hand copy of KINDS.md's list: a package added to the image later only travels needlessly.
DEVICE_HAS = {
    canonicalize_name(n)
    for n in """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn
einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio
interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy
numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13
nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
xarray xxhash yarl zipp
""".split()
}

PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 26, 27, 28, 31, 34, 35)] + ["manylinux2014_x86_64"]


def machine(python: str = "3.12.3") -> dict[str, str]:
    """The environment markers of requirements (`; python_version < "3.13"` and the like) there."""
    return {
        "python_version": ".".join(python.split(".")[:2]),
        "python_full_version": python,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def needed(python: str = "3.12.3") -> dict[str, str]:
    """{distribution: version installed here} of ROOTS and everything they require on Linux
    x86-64 under `python`, less what the machine's image holds."""
    env = machine(python)
    found: dict[str, str] = {}
    todo = list(ROOTS)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found or name in DEVICE_HAS or name in SKIP:
            continue
        dist = md.distribution(name)
        found[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return dict(sorted(found.items()))


def tree_bytes() -> int:
    """What travels besides .device: tracked files, and untracked ones git does not ignore."""
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=ROOT, capture_output=True, check=True).stdout
    return sum((ROOT / f).stat().st_size for f in files.decode().split("\0") if f and (ROOT / f).is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="3.12.3", help="the machine's Python (3.12.3 on nvidia-h200)")
    parser.add_argument("--pack", default="cub_warbler_sparrow", help="the ../shared/data pack that travels")
    parser.add_argument("--list", action="store_true", help="print the packages and stop")
    args = parser.parse_args(argv)
    packages = needed(args.python)
    if args.list:
        print("\n".join(f"{n}=={v}" for n, v in packages.items()))
        return 0
    pack = ROOT.parent / "shared" / "data" / args.pack
    if not pack.is_dir():
        print(f"error: {pack} is not here: the packs sit in ../shared/data beside the repository", file=sys.stderr)
        return 2
    shutil.rmtree(KIT, ignore_errors=True)
    wheels = KIT / "wheels"
    wheels.mkdir(parents=True)
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"]
        + ["--only-binary=:all:", "--python-version", args.python, "--implementation", "cp", *platforms]
        + ["-d", str(wheels), *(f"{n}=={v}" for n, v in packages.items())],
        check=True,
    )
    shutil.copytree(pack, KIT / "data" / args.pack)
    kit = sum(p.stat().st_size for p in KIT.rglob("*") if p.is_file())
    total = kit + tree_bytes()
    mib = f"{kit / 2**20:.1f} MiB; with the working tree {total / 2**20:.1f} MiB"
    print(f"{KIT}: {len(packages)} wheels and {args.pack}, {mib}")
    if total > LIMIT:
        print(f"error: more than the {LIMIT // 2**20} MiB one call may carry", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
