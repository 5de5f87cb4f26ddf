# %% [markdown]
# # 00 Quickstart: GAD on your own model
# GAD needs a trained classifier, some of its training images with their labels, and a captum
# gradient method. Here the classifier is a small CNN trained below on three synthetic shapes
# (ring, cross, diamond); put your own model and images in its place. Training images go in as
# uint8 (N, 3, H, W) (normalised with ImageNet statistics, as the pipeline does) or as the float
# tensors your model takes; the images to explain as your model takes them.
#
# **Reads:** nothing. **Writes:** a temporary `gad.pt` (the supports).

# %%
import tempfile
from pathlib import Path

import torch
from captum.attr import IntegratedGradients

from gadlib import GAD, figures
from gadlib.data import normalize
from gadlib.models import small_cnn
from gadlib.synthetic import THREE_CLASS_NAMES, make_synthetic
from gadlib.training import train_classifier

# %% [markdown]
# Your model (here: trained in a few seconds), your training images and labels, and a few
# images to explain.

# %%
x, y, _ = make_synthetic(600, 32, seed=0, n_classes=3)
images = (x * 255).round().to(torch.uint8)
torch.manual_seed(0)
model = small_cnn(3)
train_classifier(model, (images[:480], y[:480]), epochs=8, lr=3e-3, batch_size=32)
inputs, targets = normalize(images[480:486]), y[480:486]

# %% [markdown]
# GAD: four supports, each the model regressed onto its own logits with every other class's
# logit lowered by alpha (METHOD.md steps 1-2); then the pixels that every model's Integrated
# Gradients map ranks in its top half (step 3). The original map (top) and the GAD map
# (bottom), drawn with captum's `visualize_image_attr`:

# %%
gad = GAD(model, IntegratedGradients, alphas=[2, 4, 6, 8]).fit(images[:480], y[:480], epochs=2)
ex = gad.explain(inputs, target=targets, n_steps=32)
figures.original_vs_gad(images[480:486], ex, [THREE_CLASS_NAMES[t] for t in targets])

# %% [markdown]
# Whether the supports keep the order of the model's logits, the paper's premise (METHOD.md
# step 2), on images they were not trained on: each support's accuracy, its MSE to its distanced
# targets and the Spearman of each logit with the model's. A support below 0.5 on a logit is
# warned about; here every one is above 0.95.

# %%
report = gad.report(images[486:], y[486:])
assert report.filter(like="spearman").min().min() > 0.95
report

# %% [markdown]
# The paper's measures for these images (RC < 1: the GAD hull is smaller than the original's;
# RS: the logit's change per occluded pixel), then the supports saved and loaded back.

# %%
gad.evaluate(inputs, targets, n_steps=32)

# %%
gad.save(path := Path(tempfile.mkdtemp()) / "gad.pt")
assert torch.equal(GAD.load(path, model).attribute(inputs, targets, n_steps=32), ex.gad)
