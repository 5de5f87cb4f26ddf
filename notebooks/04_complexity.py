# %% [markdown]
# # 04 Complexity
# Consensus and GAD maps (METHOD.md step 3), their convex hulls, and RC = area(H_GAD) / area(H_orig) for every image, method, class and hull rule.
#
# **Reads:** attributions. **Writes:** `<run>/<arch>/rc.csv`, `<run>/<arch>/hulls.pt`, `<run>/<arch>/consensus.pt`, `<run>/<arch>/ground_truth.csv` (synthetic data).

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
from IPython.display import display

from gadlib import stages, tables

cfg, data = stages.setup(globals())

# %%
family = stages.model_family(cfg, data)
attr = stages.attributions(cfg, data, family)
comp = stages.complexity(cfg, data, family, attr)
rc, gt = comp.rc, comp.ground_truth
for rule in cfg.hull_rules:
    print(f"Table 1, hull rule {rule}")
    display(tables.table1(rc[rc["hull_rule"] == rule]))

# %%
tables.ground_truth_summary(gt) if gt is not None else "no ground truth for real images"

# %% [markdown]
# ## Checks

# %%
assert len(rc) == len(cfg.methods) * len(cfg.hull_rules) * 2 * cfg.n_eval
same_rule = cfg.consensus_rule == "top_q" and cfg.consensus_q == cfg.hull_q
if same_rule:  # METHOD.md: then the GAD hull lies inside the original hull
    assert (rc[rc["hull_rule"] == "top_q"]["rc"].dropna() <= 1 + 1e-9).all()
