# %% [markdown]
# # 03 Attributions
# The five gradient methods for both classes, for the original and every support, on the evaluation images; stored once and reused.
#
# **Reads:** data and models. **Writes:** `<run>/<arch>/attributions/<method>.pt` (models x classes x images x H x W).

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
from gadlib import stages

cfg, data = stages.setup(globals())

# %%
family = stages.model_family(cfg, data)
attr = stages.attributions(cfg, data, family)
attr.summary()

# %% [markdown]
# ## Checks

# %%
n_models = 1 + len(cfg.alphas)
assert set(attr.precision) == set(cfg.methods) and set(attr.precision.values()) <= {"fp32", "bf16"}
for m, v in attr.maps.items():
    assert v.shape == (n_models, 2, cfg.n_eval, cfg.image_size, cfg.image_size), m
    assert v.isfinite().all(), m
