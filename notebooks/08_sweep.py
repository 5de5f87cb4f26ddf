# %% [markdown]
# # 08 Sweep: how the verdicts move with each swept parameter
# Reads a finished sweep (`python -m gadlib.sweep NAME ...` or `make sweep`): its index
# `figures/<sweep>/points.csv` and every point's per-image RC and RS rows. For each swept
# parameter and value, pooled over every point with that value: the share of images with
# RC < 1, the RS gain of GAD over the supplementary region, its gain over the matched-area
# baseline, and its gain over that baseline in logit change (RS x hull area: RS is per hull
# pixel, and the baseline's hull is the smaller for most images), and the two hulls' areas (the
# share of images whose baseline hull is the smaller, the mean ratio of its area to GAD's), each
# with a seeded 95% bootstrap interval that resamples whole pictures (a picture's rows under both
# targets, and at every point that evaluates it, at whatever position, are one cluster); then,
# per measure, how many intervals lie above, contain or lie below its reference
# (`sweep_effects.REFERENCES`).
#
# **Reads:** `figures/<sweep>/points.csv`, each point's `figures/<sweep>/<point>/RUN.json` (a point made under other definitions than this code's is refused), `runs/<sweep>/<point>/<arch>/{rc,rs}.csv`, `runs/<sweep>/<point>/data.pt` (which files the images are).
# **Writes:** `figures/<sweep>/effects_<hull rule>.{csv,md}`, `figures/<sweep>/sweep_effects_<hull rule>.png`.

# %% tags=["parameters"]
import os

# the sweep's name (make test sets GAD_SWEEP to the sweep its tests ran)
sweep = os.environ.get("GAD_SWEEP", "alphas-q")
# the hull rule whose RC and RS rows are pooled: top_q or frac_max
hull_rule = "top_q"
# bootstrap resamples of each interval, and their seed
resamples = 2000
seed = 0
# where the sweep's run folders and figures are (its --runs-dir and --figures-dir); None: runs/
# and figures/ of the repository, or GAD_RUNS_DIR and GAD_FIGURES_DIR where set
runs_dir = None
figures_dir = None

# %%
from IPython.display import Image, display

from gadlib import figures, sweep_effects

points, rc, rs = sweep_effects.read_sweep(sweep, runs_dir, figures_dir)
points

# %%
table = sweep_effects.effects(points, rc, rs, hull_rule, resamples, seed)
csv, md = sweep_effects.write(table, points, sweep, hull_rule, figures_dir)
print(md.read_text())

# %%
_, out = sweep_effects.sweep_dirs(sweep, runs_dir, figures_dir)
path = figures.sweep_effects(
    table, sweep_effects.effects_paths(out, hull_rule)["png"], f"sweep {sweep}, hull rule {hull_rule}"
)
display(Image(filename=path))
