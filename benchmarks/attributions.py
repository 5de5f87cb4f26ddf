"""Attribution speed: gadlib's engine against plain captum, same work, one process, one run.

Plain captum is written the way a competent user would: batched over all images, default
arguments (Gauss-Legendre IG, zero baseline), one call per method, target class and model, and
an internal batch size for IG so that it fits in memory. Both produce channel-reduced maps for
both classes; the script checks that they agree (max abs difference, Spearman rank correlation,
top-half Jaccard) and prints images per second and the ratio, per method and in total.

    python benchmarks/attributions.py                        # CPU size, a few minutes on 2 cores
    python benchmarks/attributions.py --size 224 --images 128 --ig-steps 50   # GPU size
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gadlib.attributions import captum_maps  # noqa: E402
from gadlib.config import METHOD_SHORT, METHODS  # noqa: E402
from gadlib.data import normalize  # noqa: E402
from gadlib.engine import attribution_maps, map_agreement  # noqa: E402
from gadlib.models import build_model, pick_device  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def random_models(arch, args, device):
    torch.manual_seed(0)
    models = []
    for _ in range(args.models):
        m = build_model(arch, 2, args.size).eval().to(device)
        for mod in m.modules():  # trained-looking batch-norm statistics, so folding is real work
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2)
        models.append(m)
    return models, torch.randn(args.images, 3, args.size, args.size, device=device)


def run_models(arch, args, device):
    """The trained original and supports of a finished run, on its own test images."""
    run = Path(args.run)
    data = torch.load(run / "data.pt", weights_only=False)["value"]
    size = data.test.images.shape[-1]
    files = sorted((run / arch / "models").glob("*.pt"), key=lambda p: p.name != "original.pt")[: args.models]
    models = []
    for f in files:
        stored = torch.load(f, weights_only=False)["value"]
        m = build_model(arch, 2, size)
        m.load_state_dict(stored["state"] if "state" in stored else stored)
        models.append(m.eval().to(device))
    return models, normalize(data.test.images[: args.images]).to(device)


def bench_arch(arch: str, args, device) -> list[dict]:
    models, x = (run_models if args.run else random_models)(arch, args, device)
    warm = x[:2]
    attribution_maps(models[:1], warm, list(METHODS), ig_steps=2, progress=False)  # warm-up both paths
    captum_maps(models[:1], warm, ["saliency"], ig_steps=2)
    rows = []
    fresh_total = {}
    plain_total = 0.0
    for method in METHODS:
        plain, t_plain = timed(lambda: captum_maps(models, x, [method], ig_steps=args.ig_steps,
                                                   internal_batch_size=args.internal_batch), device)
        fast, t_fast = timed(lambda: attribution_maps(models, x, [method], ig_steps=args.ig_steps,
                                                      batch_size=args.batch, internal_batch=args.internal_batch,
                                                      precision=args.precision, progress=False), device)
        fresh_total[method] = plain[method]
        plain_total += t_plain
        rho, jac = map_agreement(fast[method], plain[method])
        n = len(x) * len(models)
        rows.append({
            "arch": arch, "method": METHOD_SHORT[method], "plain img/s": n / t_plain, "engine img/s": n / t_fast,
            "ratio": t_plain / t_fast, "max abs diff": float((fast[method] - plain[method]).abs().max()),
            "spearman mean": float(rho.mean()), "spearman min": float(rho.min()),
            "jaccard mean": float(jac.mean()), "jaccard min": float(jac.min()),
            "bf16": args.precision == "bf16",
        })
    # All five methods in one engine call: this is where work is shared between methods.
    together, t_all = timed(lambda: attribution_maps(models, x, list(METHODS), ig_steps=args.ig_steps,
                                                     batch_size=args.batch, internal_batch=args.internal_batch,
                                                     precision=args.precision, progress=False), device)
    agree = [map_agreement(together[m], fresh_total[m]) for m in METHODS]
    n = len(x) * len(models)
    rows.append({"arch": arch, "method": "total", "plain img/s": n / plain_total, "engine img/s": n / t_all,
                 "ratio": plain_total / t_all, "max abs diff": float("nan"),
                 "spearman mean": min(float(r.mean()) for r, _ in agree), "spearman min": min(float(r.min()) for r, _ in agree),
                 "jaccard mean": min(float(j.mean()) for _, j in agree), "jaccard min": min(float(j.min()) for _, j in agree),
                 "bf16": args.precision == "bf16"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", default=["resnet18", "vgg16"])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--models", type=int, default=1, help="models explained (original + supports)")
    ap.add_argument("--ig-steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--internal-batch", type=int, default=256)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="one precision for every method (the pipeline's per-family choice is gadlib.precision)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--run", default=None, help="a finished run folder (runs/<run>): explain its trained models "
                    "and test images instead of randomly initialised ones")
    args = ap.parse_args()
    device = pick_device(args.device)
    import pandas as pd

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    what = f"trained models of {args.run}" if args.run else f"random-weight models, {args.size} px"
    print(f"device: {name}; {what}; {args.images} images x {args.models} model(s), both classes, "
          f"IG {args.ig_steps} steps (Gauss-Legendre), torch {torch.__version__}")
    rows = [r for arch in args.archs for r in bench_arch(arch, args, device)]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("agreement: Spearman rank correlation and top-half Jaccard of the engine's maps against plain captum "
          "(fp32), mean and worst image; bf16: methods that kept bf16 after the engine's probe")


if __name__ == "__main__":
    main()
