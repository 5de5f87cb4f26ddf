# %% [markdown]
# # 01 Data
# Builds the dataset once and caches the decoded images in the run folder.
#
# **Reads:** nothing (synthetic) or `data_dir`. **Writes:** `<run>/data.pt`, `figures/<run>/dataset_examples.png`.

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
stages.data_summary(data)

# %%
display(Image(report.example_figure(cfg, data)))

# %% [markdown]
# ## Checks

# %%
assert runfiles.RunFiles(cfg).data.is_file()
assert set(data.train.labels.tolist()) == {0, 1} and set(data.test.labels.tolist()) == {0, 1}
assert data.train.images.shape[-1] == cfg.image_size
