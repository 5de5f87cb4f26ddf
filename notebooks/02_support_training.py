# %% [markdown]
# # 02 Support training
# Trains (or loads) the original classifier, then one support regression per alpha (METHOD.md steps 1-2), and reports how far each support keeps the order of the original's activations (the Spearman columns of its table): where a support's falls below 0.5 on a logit the run warns, and goes on.
#
# **Reads:** `<run>/data.pt`. **Writes:** `<run>/<arch>/models/*.pt`, `<run>/<arch>/logit_space.csv`.

# %% tags=["parameters"]
import os

# default | cpu | paper | smoke: make test sets GAD_PROFILE=smoke
profile = os.environ.get("GAD_PROFILE", "default")
# synthetic | folder | kaggle | cub; data_dir is the image folder of a real dataset
dataset = "synthetic"
data_dir = None
# two class folder names for folder and kaggle, or species name patterns for cub
classes = None
# resnet18 | vgg16
arch = "resnet18"
# run folder name; None means dataset-profile
run_name = None
# path of your own trained two-class classifier; None trains one here
checkpoint = None
# start from torchvision ImageNet weights already in the local torch cache
pretrained = False
# None below takes the value of the profile, see gadlib/config.py
image_size = None
train_epochs = None
alphas = None
alphas_c2 = None
support_epochs = None
methods = None
n_eval = None
ig_steps = None
consensus_rule = None
hull_rules = None
# any other RunConfig field, for example {"consensus_q": 0.3}
extra = {}

# %%
from IPython.display import Image, display

from gadlib import report, runfiles, stages

cfg, data = stages.setup(globals())

# %%
family = stages.model_family(cfg, data)
print(f"original {cfg.arch}: test accuracy {family.test_accuracy:.3f}")
family.report

# %%
logits = stages.logit_space(cfg, data, family)
display(Image(report.logit_space_figure(cfg, data.classes, logits)))

# %% [markdown]
# ## Checks

# %%
assert len(family.supports) == len(cfg.alphas)
assert runfiles.RunFiles(cfg).original.is_file() or cfg.checkpoint
assert family.report["mse"].iloc[1:].notna().all()  # row 0 is the original
