"""Support-training speed: gadlib against a plain PyTorch loop, same work, one run.

Plain: a torchvision ImageFolder over JPEG files and a DataLoader that decodes, resizes and
normalises every image again in every epoch, then an fp32 MSE step. gadlib: images decoded
once into a uint8 tensor kept in memory (on the GPU when there is one), normalised per batch,
bf16 autocast on CUDA. Both train a support copy of the same model for the same epochs.

    python benchmarks/training.py                     # ../shared/data/catsdogs if present
    python benchmarks/training.py --size 224 --epochs 2 --images 1024   # GPU size
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from gadlib.data import Split, decode_images  # noqa: E402
from gadlib.models import build_model, pick_device  # noqa: E402
from gadlib.synthetic import make_synthetic  # noqa: E402
from gadlib.training import train_support  # noqa: E402


def image_folder(args) -> Path:
    pack = ROOT.parent / "shared" / "data" / "catsdogs"
    if pack.is_dir() and not args.synthetic:
        return pack
    tmp = Path(tempfile.mkdtemp(prefix="gad-bench-"))
    x, y, _ = make_synthetic(args.images, 256, seed=0)
    for i, (img, label) in enumerate(zip(x, y)):
        d = tmp / f"class{int(label)}"
        d.mkdir(exist_ok=True)
        transforms.functional.to_pil_image(img).save(d / f"{i}.jpg", quality=90)
    return tmp


def plain_loop(model, loader, targets, epochs, lr, device):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, _, idx in loader:
            loss = nn.functional.mse_loss(model(x.to(device)), targets[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()


class Indexed(torch.utils.data.Dataset):
    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return x, y, i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--synthetic", action="store_true", help="write synthetic JPEGs instead of the shared pack")
    args = ap.parse_args()
    device = pick_device()
    folder = image_folder(args)
    tf = transforms.Compose([
        transforms.Resize(args.size), transforms.CenterCrop(args.size), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    base = datasets.ImageFolder(folder, transform=tf)
    keep = torch.randperm(len(base), generator=torch.Generator().manual_seed(0))[: args.images].tolist()
    plain_set = Indexed(Subset(base, keep))
    torch.manual_seed(0)
    original = build_model(args.arch, 2, args.size).to(device).eval()
    targets = torch.randn(len(plain_set), 2)
    n = len(plain_set) * args.epochs
    print(f"device: {device}; {len(plain_set)} images from {folder} at {args.size} px, {args.epochs} epochs, {args.arch}")

    loader = DataLoader(plain_set, batch_size=args.batch, shuffle=True, num_workers=args.workers)
    t = time.perf_counter()
    plain_loop(copy.deepcopy(original), loader, targets, args.epochs, 4e-5, device)
    t_plain = time.perf_counter() - t

    t = time.perf_counter()  # gadlib's time includes decoding every image once
    paths = [Path(base.samples[i][0]) for i in keep]
    images, kept = decode_images(paths, args.size)
    split = Split(images, torch.tensor([base.samples[i][1] for i in keep])[kept])
    train_support(original, split, targets[kept], args.epochs, 4e-5, args.batch)
    t_gad = time.perf_counter() - t
    print(f"plain DataLoader loop: {n / t_plain:8.1f} img/s ({t_plain:.1f} s)")
    print(f"gadlib in-memory     : {n / t_gad:8.1f} img/s ({t_gad:.1f} s, decoding once included)")
    print(f"ratio                : {t_plain / t_gad:8.2f}x")


if __name__ == "__main__":
    main()
