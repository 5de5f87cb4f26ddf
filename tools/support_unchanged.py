"""Train the first support of the synthetic-default run again, through the current code, and
compare it with the one cached in runs/synthetic-default (made by `make reproduce`): the same
fingerprint means support training still gives the very same weights.

Usage: python tools/support_unchanged.py [resnet18|vgg16]   (exit code 1 if they differ)"""

import sys
import tempfile
import time
from pathlib import Path

from gadlib import runfiles, stages
from gadlib.models import pick_device
from gadlib.runfiles import RunFiles


def main(arch: str = "resnet18") -> int:
    cfg, data = stages.setup({"dataset": "synthetic", "arch": arch, "profile": "default"})
    files = RunFiles(cfg)
    split = runfiles.split_fingerprint(data.train)
    original, record = stages.original_classifier(cfg, data, pick_device(cfg.device), split)
    alpha = tuple(cfg.support_alphas[0])
    st = stages.support_stamp(cfg, alpha, record["fingerprint"], split, position=0)
    cached, cached_st = runfiles.load(files.support(*alpha))
    if cached is None or cached_st["key"] != st["key"]:
        sys.exit(f"error: no cached support {alpha} of this run in {files.support(*alpha)}: run make reproduce first")
    started = time.time()
    _, records = stages.train_supports(cfg, data, original, [alpha], [Path(tempfile.mkdtemp()) / "s.pt"], [st])
    same = records[0]["fingerprint"] == cached["fingerprint"] and records[0]["train_mse"] == cached["train_mse"]
    print(
        f"{arch} support {alpha}: trained again in {time.time() - started:.0f} s; fingerprint "
        f"{records[0]['fingerprint'][:12]} vs cached {cached['fingerprint'][:12]}: {'same' if same else 'DIFFERENT'}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
