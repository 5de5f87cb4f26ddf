"""The classifiers being explained: torchvision ResNet18 and VGG16 with a two-class head."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from .convs import small_map_convs
from .errors import GADInputError

_WEIGHTS = {
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1,
}


def pick_device(name: str = "auto") -> torch.device:
    """The device `name` (a RunConfig device), or a one-line error where this machine lacks it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type in ("cuda", "xpu"):
        backend = getattr(torch, device.type, None)
        count = backend.device_count() if backend is not None and backend.is_available() else 0
        if (device.index or 0) >= count:
            have = (
                f"{count} {device.type} device(s), {device.type}:0 to {count - 1}"
                if count
                else f"no {device.type} device"
            )
            other = ", or an index below that" if count else ""
            raise GADInputError(f"device {name!r} is not on this machine ({have}): choose auto or cpu{other}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise GADInputError(f"device {name!r} is not on this machine (no Apple GPU): choose auto or cpu")
    return device


def describe_device(device: torch.device) -> str:
    """The device in words, for run records: GPU name, or CPU model and whether it has native bf16."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "xpu":
        return f"xpu: {torch.xpu.get_device_name(device)}"
    if device.type == "mps":
        return "mps: Apple GPU"
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return f"cpu: {name} ({'native' if native else 'no native'} bf16)"


SCRIPTED = (
    "is TorchScript: GAD trains copies of the model, which TorchScript does not allow; "
    "give the nn.Module itself, or its state_dict for its architecture"
)
# where training scripts keep the weights in a checkpoint dict (the PyTorch tutorials' form too)
WEIGHT_KEYS = ("state_dict", "model_state_dict", "model")
# the classifier layer of each architecture's state_dict, whose rows are its classes
HEAD_WEIGHT = {"resnet18": "fc.weight", "vgg16": "classifier.6.weight"}


def _no_inplace_relu(model: nn.Module) -> nn.Module:
    # Guided Backprop and Deconvolution hook ReLU modules; in-place ReLUs break those hooks.
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model


def _cached_weights(arch: str) -> dict:
    weights = _WEIGHTS[arch]
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if not path.is_file():
        raise GADInputError(
            f"pretrained {arch} weights are not in the local torch cache ({path}): on a machine with "
            f"internet run `python -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\"` "
            f"and copy the file there, or train from scratch (pretrained=False)"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def build_model(arch: str, num_classes: int = 2, image_size: int = 224, pretrained: bool = False) -> nn.Module:
    """torchvision `arch` with a `num_classes` head.

    Below 224 px VGG16's 7x7 pooling and 25088x4096 classifier make no sense (the feature map is
    1x1 or 2x2); there the convolutional trunk stays as it is and the head becomes global average
    pooling + a 512-wide three-layer classifier. The README lists this as a departure.
    """
    if arch == "resnet18":
        model = torchvision.models.resnet18(num_classes=1000 if pretrained else num_classes)
        if pretrained:
            model.load_state_dict(_cached_weights(arch))
            model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif arch == "vgg16":
        model = torchvision.models.vgg16(num_classes=1000 if pretrained else num_classes)
        if pretrained:
            model.load_state_dict(_cached_weights(arch))
            model.classifier[-1] = nn.Linear(4096, num_classes)
        if image_size < 224:
            model.avgpool = nn.AdaptiveAvgPool2d(1)
            model.classifier = nn.Sequential(
                nn.Linear(512, 512),
                nn.ReLU(),
                nn.Dropout(),
                nn.Linear(512, 512),
                nn.ReLU(),
                nn.Dropout(),
                nn.Linear(512, num_classes),
            )
    else:
        raise GADInputError(f"unknown architecture {arch!r}: choose resnet18 or vgg16")
    return _no_inplace_relu(model)


def small_cnn(num_classes: int, channels: int = 16) -> nn.Module:
    """A small convolutional classifier (three conv + batch-norm + ReLU blocks, global pooling):
    a stand-in for "your own model" in the quickstart and the tests, trained in seconds on a CPU."""
    c = channels

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(3, c),
        *block(c, 2 * c),
        *block(2 * c, 2 * c),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * c, num_classes),
    )


def _run_model_state(path: Path, stored: dict, arch: str, image_size: int) -> tuple[dict, dict]:
    """The weights of a model a run of this pipeline stored (runs/<run>/<arch>/models/*.pt: the
    state_dict under its stamp), after checking it is of `arch` and was trained at `image_size`,
    and what it was trained on: {"train_files", "data_dir"}."""
    made = stored["stamp"].get("settings") or {}
    state = stored["value"].get("state")
    if not isinstance(state, dict):
        raise GADInputError(f"checkpoint {path} is a run's stored file, not a model: give a run's models/original.pt")
    if (stage := stored["stamp"].get("stage")) != "original":  # a support or control sits beside it
        raise GADInputError(
            f"checkpoint {path} is a run's {stage} model, not its original classifier: "
            "give the run's models/original.pt"
        )
    if made.get("arch", arch) != arch:
        raise GADInputError(
            f"checkpoint {path} is a {made['arch']} a run of this pipeline trained, not a {arch}: "
            f"give --archs {made['arch']} (make: ARCH={made['arch']})"
        )
    if (size := made.get("image_size")) is not None and int(size) != image_size:
        raise GADInputError(
            f"checkpoint {path} is a model a run of this pipeline trained at image_size {int(size)}: "
            f"give -p image_size={int(size)}"
        )
    return state, {"train_files": stored["value"].get("train_files"), "data_dir": made.get("data_dir")}


def load_classifier(path: str | Path, arch: str, image_size: int) -> nn.Module:
    """A user's trained two-class classifier: a state_dict for `build_model(arch)` or a whole
    pickled module (`load_checkpoint`'s model)."""
    return load_checkpoint(path, arch, image_size)[0]


def load_checkpoint(path: str | Path, arch: str, image_size: int) -> tuple[nn.Module, dict | None]:
    """`load_classifier`'s model, and where it is a model a run of this pipeline stored, what that
    run trained it on ({"train_files", "data_dir"}; None for any other checkpoint)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise GADInputError(f"checkpoint {path} is a folder: give the path of your trained classifier's file")
    if not path.is_file():
        raise GADInputError(f"checkpoint {path} does not exist: give the path of your trained classifier")
    try:
        with warnings.catch_warnings():  # torch's own notes on the file (TorchScript's, say): the line below says it
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as err:  # a pickled model whose class is not importable here
        raise GADInputError(
            f"checkpoint {path} is a whole model whose class cannot be imported here ({str(err)[:120]}): "
            "save its state_dict instead, or put the module that defines the class on the Python path"
        ) from None
    except Exception as err:  # a text file, a truncated download, another format
        raise GADInputError(
            f"checkpoint {path} is not a PyTorch file ({type(err).__name__}): "
            "give a state_dict or model saved with torch.save"
        ) from None
    if isinstance(obj, torch.jit.ScriptModule):
        raise GADInputError(f"checkpoint {path} {SCRIPTED}")
    its_run = None
    if isinstance(obj, dict) and isinstance(obj.get("stamp"), dict) and isinstance(obj.get("value"), dict):
        obj, its_run = _run_model_state(path, obj, arch, image_size)
    if isinstance(obj, dict):  # a training checkpoint: the weights under one of its keys
        obj = next((obj[k] for k in WEIGHT_KEYS if isinstance(obj.get(k), (dict, nn.Module))), obj)
    if isinstance(obj, nn.Module):
        obj = obj.float()  # saved in fp16 or bf16: the pipeline computes in fp32 (and picks bf16 itself)
        try:
            with torch.no_grad():
                y = obj.eval()(torch.zeros(1, 3, image_size, image_size))
        except Exception as err:  # the model's own error: another input size or channel count
            raise GADInputError(
                f"checkpoint {path} fails on a 3 x {image_size} x {image_size} image "
                f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]}): "
                "set image_size to what it was trained on (the pipeline gives it 3-channel RGB images)"
            ) from None
        if not isinstance(y, torch.Tensor):  # a tuple or dict of outputs: not an input size's fault
            raise GADInputError(
                f"checkpoint {path} is a model whose forward returns a {type(y).__name__}, not a tensor of "
                "logits: save a module whose forward returns the logits (N, 2)"
            )
        if y.dim() != 2:
            squeezed = (
                " (a squeeze in its forward drops the batch dimension of one image: keep it)" if y.dim() == 1 else ""
            )
            raise GADInputError(
                f"checkpoint {path} gives outputs of shape {tuple(y.shape)} for one image: the pipeline explains "
                f"a classifier whose forward returns logits of shape (N, 2){squeezed}"
            )
        outputs = y.shape[1]
        if outputs == 1:  # softmax([0, z]) is sigmoid(z)'s two probabilities
            raise GADInputError(
                f"checkpoint {path} is a model with one output (a single logit z): GAD explains two logits per "
                "image; save a module whose forward returns torch.cat([torch.zeros_like(z), z], 1), which gives "
                "the same probabilities"
            )
        if outputs != 2:
            raise GADInputError(
                f"checkpoint {path} is a model with {outputs} outputs: the pipeline explains a two-class "
                "classifier; for more classes use the GAD class in Python, with pair=(c1, c2) for two of them "
                '(README, "GAD on your own model")'
            )
        return _no_inplace_relu(obj), its_run
    state = obj if isinstance(obj, dict) else None
    if state is None:
        raise GADInputError(f"checkpoint {path} holds neither a state_dict nor a model")
    model = build_model(arch, 2, image_size)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        # torch's first line only names the class; the lines after it say what differs
        details = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        what = "; ".join(d[:160] for d in details[:2]) or str(err).splitlines()[0]
        keys = [k for k in state if isinstance(k, str)]
        prefix = next(
            (p for p in ("module.", "model.", "_orig_mod.") if keys and all(k.startswith(p) for k in keys)), None
        )

        def shape(key: str) -> tuple:
            return tuple(getattr(state.get(key), "shape", ()))

        # torchvision's 224 px two-class VGG16 at a smaller size: the cause is build_model's small head
        full_head = arch == "vgg16" and image_size < 224 and shape("classifier.0.weight") == (4096, 25088)
        full_head = full_head and shape("classifier.6.weight") == (2, 4096)
        if prefix:
            hint = (
                f"its keys start with {prefix!r} (a wrapped or compiled model): save the state_dict of the model itself"
            )
        elif full_head:
            hint = (
                f"it has VGG16's 224 px head, and below 224 px (image_size {image_size}) the head is "
                "512 wide: set image_size=224 if it was trained at 224 px, else save the whole model "
                "(torch.save(model)), which runs at its own size"
            )
        elif set(keys) == set(model.state_dict()) and (classes := shape(HEAD_WEIGHT.get(arch, ""))[:1]) not in (
            (),
            (2,),
        ):
            hint = (
                f"it has a {classes[0]}-class head: the pipeline explains a two-class classifier; for more classes "
                'use the GAD class in Python, with pair=(c1, c2) for two of them (README, "GAD on your own model")'
            )
        else:
            hint = f"give a state_dict of torchvision's {arch} with a two-class head, or pick its architecture (archs)"
        raise GADInputError(f"checkpoint {path} does not fit a two-class {arch} ({what}): {hint}") from None
    return model, its_run


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Eval-mode logits for normalised inputs `x`, in batches, on the model's device.

    Computed through the same forward as training (convolutions on 1 x 1 and 2 x 2 maps as
    linear layers, convs.py): these logits are the supports' targets, and a support trained in
    frozen mode onto its original's own logits (alpha = 0) must start at zero loss and so stay
    the original. With plain convolutions the targets differed by rounding, and Adam,
    whose steps are about the learning rate whatever the gradient's size, turned that into
    drift."""
    from .data import normalize

    model.eval()
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    out = []
    with small_map_convs(model):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            xb = normalize(xb).to(dtype) if xb.dtype == torch.uint8 else xb  # a float64 or half model's dtype
            y = model(xb)
            if not isinstance(y, torch.Tensor):  # a tuple or dict of outputs (torchvision's Inception, say)
                raise GADInputError(
                    f"the model returns a {type(y).__name__}, not a tensor of logits: GAD needs a module whose "
                    "forward returns the logits (N, classes); wrap it in one that returns them"
                )
            out.append(y.float().cpu())
    return torch.cat(out)
