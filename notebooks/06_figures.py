# %% [markdown]
# # 06 Figures and tables
# Collects every architecture of the run: Table 1 and Table 2 (CSV and Markdown), the paper's directions as paired verdicts (`direction_<rule>`), what a reviewer asks of them (`baseline_check_<rule>`: the baseline's hull area, the logit change itself, family-wise verdicts, the images each verdict rests on, GAD against the hull-matched baseline and how close the two are shown to be) and the paper's figures, under `figures/<run>/`.
#
# **Reads:** everything notebooks 01-05 wrote for each architecture, after checking it was made under this notebook's settings. **Writes:** `figures/<run>/`, with `RUN.json`, the record of the run.

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

from gadlib import record, report, runfiles, stages

cfg, data = stages.setup(globals())

# %%
results = report.run_results(cfg, data)
written = report.write_tables(cfg, results)
record.write_run_record(cfg, results)
for name, t in written.items():
    print(name)
    display(t)

# %%
paths = report.make_figures(cfg, data, results)
for p in paths:
    display(Image(p))

# %% [markdown]
# ## Checks

# %%
assert all(p.is_file() for p in paths)
assert runfiles.RunFiles(cfg).run_record.is_file() and (cfg.figure_dir / f"table1_{cfg.hull_rules[0]}.md").is_file()
