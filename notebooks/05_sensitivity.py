# %% [markdown]
# # 05 Sensitivity
# RS = |N_a(I) - N_a(I occluded)| / occluded area, for the GAD hull, the supplementary region (original hull minus GAD hull), the matched-area baseline (as many pixels as GAD) and the hull-matched baseline (as much hull as GAD).
#
# **Reads:** `<run>/<arch>/hulls.pt`, the original model. **Writes:** `<run>/<arch>/rs.csv`, `<run>/<arch>/eval_logits.pt`.

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

from gadlib import consensus, runfiles, stages, tables

cfg, data = stages.setup(globals())

# %%
family = stages.model_family(cfg, data)
rs = stages.sensitivity(cfg, data, family)
for rule in cfg.hull_rules:
    print(f"Table 2 (RS x 10^2), hull rule {rule}")
    display(tables.table2(rs[rs["hull_rule"] == rule], consensus.RS_REGIONS))

# %%
print("empty masks (RS undefined, left out of the means):", int(rs["rs"].isna().sum()))

# %% [markdown]
# ## Checks

# %%
assert set(rs["mask"]) == set(consensus.RS_REGIONS)
# one row per region for each (method, hull rule, target, image) notebook 04 scored, and GAD's
# RS undefined exactly where its hull is empty (notebook 04's areas)
rc = runfiles.read_csv(runfiles.RunFiles(cfg).rc_csv)[0]
gad = rs[rs["mask"] == "gad"].merge(rc, on=["method", "hull_rule", "target", "image"], validate="one_to_one")
assert len(rs) == len(consensus.RS_REGIONS) * len(rc) and len(gad) == len(rc)
assert gad["rs"].isna().equals(gad["area_gad"] == 0)
