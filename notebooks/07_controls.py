# %% [markdown]
# # 07 Controls
# Does distancing add anything? For one architecture, GAD's region beside what simpler means give at the same area: the matched-area baseline, GAD with supports trained with alpha = 0 (retraining alone), and SmoothGrad. RS, RC, deletion and insertion AUC and (synthetic data) the true object, paired per image with bootstrap intervals; and a sanity check by cascading randomisation.
#
# **Reads:** the models, attributions and hulls of notebooks 02-04. **Writes:** `<run>/<arch>/models/control_*.pt`, `<run>/<arch>/control_maps.pt`, `<run>/<arch>/controls.csv`, `<run>/<arch>/sanity.csv`, `figures/<run>/controls_*_<arch>.*`, `figures/<run>/sanity_<arch>.*`, `figures/<run>/fig_controls_<arch>.png`, `figures/<run>/fig_sanity_<arch>.png`.

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

from gadlib import controls, figures, runfiles, stages

cfg, data = stages.setup(globals())

# %%
family = stages.model_family(cfg, data)
attr = stages.attributions(cfg, data, family)
comp = stages.complexity(cfg, data, family, attr)
ctrl = controls.controls(cfg, data, family, attr, comp)
sane = controls.sanity_check(cfg, data, family, attr)
written = controls.write_tables(cfg, ctrl, sane)
written[f"controls_verdicts_{cfg.arch}"]

# %% [markdown]
# ## GAD against each control
# Mean of GAD minus the control per image and class, signed so that > 0 favours GAD (deletion: lower is better), with a 95% bootstrap interval and the share of images where GAD wins.

# %%
display(
    Image(
        figures.forest(
            ctrl.paired,
            runfiles.RunFiles(cfg).controls_figure,
            f"GAD against its controls ({cfg.dataset}, {cfg.arch})",
        )
    )
)
written[f"controls_paired_{cfg.arch}"]

# %%
written[f"controls_means_{cfg.arch}"]

# %% [markdown]
# ## Do the maps depend on the model?
# Cascading randomisation of the whole family, top layer first (Adebayo et al., 2018): Spearman correlation of the original's, GAD's and the matched-area baseline's maps with the trained ones. A map that stays similar to the trained one hardly depends on the model. Every model gets the same random layers, so with every layer random the family is one network and GAD's randomised map is the baseline's: the label of GAD against the baseline there compares the two trained maps with one random map (`make controls-summary` gives the same comparison one step earlier, where the models still differ).

# %%
display(
    Image(
        figures.cascade(
            sane, runfiles.RunFiles(cfg).sanity_figure, f"Cascading randomisation ({cfg.dataset}, {cfg.arch})"
        )
    )
)
written[f"sanity_{cfg.arch}"]

# %% [markdown]
# ## Checks

# %%
assert set(ctrl.rows["map"]) >= {"orig", "gad", "base", "gad0", "smooth"}
assert (ctrl.paired["n"] > 0).all()  # every comparison has images, so none is undefined
assert set(sane["map"]) == {"orig", "gad", "base"}
everything_random = sane[(sane["step"] == sane["step"].max()) & (sane["map"] == "orig")]
assert everything_random["spearman"].mean() < 0.99  # randomising every layer changes the maps
