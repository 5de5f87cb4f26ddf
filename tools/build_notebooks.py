"""Writes notebooks/0*.ipynb. The six notebooks share one parameters cell and one setup cell,
so they are generated here rather than edited by hand; tests/test_project.py checks that the
committed notebooks match this script. Run: python tools/build_notebooks.py"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent

PARAMETERS = '''import os

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
extra = {}'''

SETUP = '''import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd().parent))  # the repository root, when run from notebooks/
import pandas as pd
from IPython.display import Image, display

from gadlib import RunConfig, controls, figures, metrics, record, report, runfiles, sanity, stages, tables
from gadlib.data import load_dataset

cfg = RunConfig.build(
    profile=profile, dataset=dataset, data_dir=data_dir, classes=classes, arch=arch, run_name=run_name,
    checkpoint=checkpoint, pretrained=pretrained, image_size=image_size, train_epochs=train_epochs, alphas=alphas, alphas_c2=alphas_c2,
    support_epochs=support_epochs, methods=methods, n_eval=n_eval, ig_steps=ig_steps,
    consensus_rule=consensus_rule, hull_rules=hull_rules, **extra,
)
print(f"run folder: {cfg.run_dir}  profile: {cfg.profile}  arch: {cfg.arch}")
data = load_dataset(cfg)'''

NOTEBOOKS = {
    "01_data": [
        "# 01 Data\nBuilds the dataset once and caches the decoded images in the run folder.\n\n"
        "**Reads:** nothing (synthetic) or `data_dir`. **Writes:** `<run>/data.pt`, `figures/<run>/dataset_examples.png`.",
        "stages.data_summary(data)",
        "display(Image(report.example_figure(cfg, data)))",
        "## Checks",
        "assert runfiles.RunFiles(cfg).data.is_file()\n"
        "assert set(data.train.labels.tolist()) == {0, 1} and set(data.test.labels.tolist()) == {0, 1}\n"
        "assert data.train.images.shape[-1] == cfg.image_size",
    ],
    "02_support_training": [
        "# 02 Support training\nTrains (or loads) the original classifier, then one support regression per alpha "
        "(METHOD.md steps 1-2), and checks that the supports keep the order of the original's activations.\n\n"
        "**Reads:** `<run>/data.pt`. **Writes:** `<run>/<arch>/models/*.pt`, `<run>/<arch>/logit_space.csv`.",
        "family = stages.model_family(cfg, data)\n"
        "print(f'original {cfg.arch}: test accuracy {family.test_accuracy:.3f}')\n"
        "family.report",
        "logits = stages.logit_space(cfg, data, family)\n"
        "display(Image(figures.logit_space(logits, data.classes, cfg.figure_dir / f'fig1_logit_space_{cfg.arch}.png',\n"
        "                                  f'Logit space before and after distancing ({cfg.arch})')))",
        "## Checks",
        "assert len(family.supports) == len(cfg.alphas)\n"
        "assert runfiles.RunFiles(cfg).original.is_file() or cfg.checkpoint\n"
        "assert family.report['mse'].iloc[1:].notna().all()  # row 0 is the original",
    ],
    "03_attributions": [
        "# 03 Attributions\nThe five gradient methods for both classes, for the original and every support, on the "
        "evaluation images; stored once and reused.\n\n"
        "**Reads:** data and models. **Writes:** `<run>/<arch>/attributions/<method>.pt` "
        "(models x classes x images x H x W).",
        "family = stages.model_family(cfg, data)\n"
        "attr = stages.attributions(cfg, data, family)\n"
        "attr.summary()",
        "## Checks",
        "n_models = 1 + len(cfg.alphas)\n"
        "assert set(attr.precision) == set(cfg.methods) and set(attr.precision.values()) <= {'fp32', 'bf16'}\n"
        "for m, v in attr.maps.items():\n"
        "    assert v.shape == (n_models, 2, cfg.n_eval, cfg.image_size, cfg.image_size), m\n"
        "    assert v.isfinite().all() and (v >= 0).all(), m",
    ],
    "04_complexity": [
        "# 04 Complexity\nConsensus and GAD maps (METHOD.md step 3), their convex hulls, and RC = area(H_GAD) / "
        "area(H_orig) for every image, method, class and hull rule.\n\n"
        "**Reads:** attributions. **Writes:** `<run>/<arch>/rc.csv`, `<run>/<arch>/hulls.pt`, "
        "`<run>/<arch>/consensus.pt`, `<run>/<arch>/ground_truth.csv` (synthetic data).",
        "family = stages.model_family(cfg, data)\n"
        "attr = stages.attributions(cfg, data, family)\n"
        "comp = stages.complexity(cfg, data, family, attr)\n"
        "rc, gt = comp.rc, comp.ground_truth\n"
        "for rule in cfg.hull_rules:\n"
        "    print(f'Table 1, hull rule {rule}')\n"
        "    display(metrics.table1(rc[rc['hull_rule'] == rule]))",
        "tables.ground_truth_summary(gt) if gt is not None else 'no ground truth for real images'",
        "## Checks",
        "assert len(rc) == len(cfg.methods) * len(cfg.hull_rules) * 2 * cfg.n_eval\n"
        "same_rule = cfg.consensus_rule == 'top_q' and cfg.consensus_q == cfg.hull_q\n"
        "if same_rule:  # METHOD.md: then the GAD hull lies inside the original hull\n"
        "    assert (rc[rc['hull_rule'] == 'top_q']['rc'].dropna() <= 1 + 1e-9).all()",
    ],
    "05_sensitivity": [
        "# 05 Sensitivity\nRS = |N_a(I) - N_a(I occluded)| / occluded area, for the GAD hull, the supplementary "
        "region (original hull minus GAD hull) and the matched-area baseline.\n\n"
        "**Reads:** `<run>/<arch>/hulls.pt`, the original model. **Writes:** `<run>/<arch>/rs.csv`, "
        "`<run>/<arch>/eval_logits.pt`.",
        "family = stages.model_family(cfg, data)\n"
        "rs = stages.sensitivity(cfg, data, family)\n"
        "for rule in cfg.hull_rules:\n"
        "    print(f'Table 2 (RS x 10^2), hull rule {rule}')\n"
        "    display(metrics.table2(rs[rs['hull_rule'] == rule], ('sup', 'gad', 'base')))",
        "print('empty masks (RS undefined, left out of the means):', int(rs['rs'].isna().sum()))",
        "## Checks",
        "assert set(rs['mask']) == {'gad', 'sup', 'base'}\n"
        "assert (rs['rs'].dropna() >= 0).all()",
    ],
    "06_figures": [
        "# 06 Figures and tables\nCollects every architecture of the run: Table 1 and Table 2 (CSV and Markdown) "
        "and the paper's figures, under `figures/<run>/`.\n\n"
        "**Reads:** everything notebooks 01-05 wrote for each architecture, after checking it was made under "
        "this notebook's settings. **Writes:** `figures/<run>/`, with `RUN.json`, the record of the run.",
        "results = stages.run_results(cfg)\n"
        "written = stages.write_tables(cfg, results)\n"
        "record.write_run_record(cfg, results)\n"
        "for name, t in written.items():\n"
        "    print(name)\n"
        "    display(t)",
        "paths = report.make_figures(cfg, data, results)\n"
        "for p in paths:\n"
        "    display(Image(p))",
        "## Checks",
        "assert all(p.is_file() for p in paths)\n"
        "assert runfiles.RunFiles(cfg).run_record.is_file() and (cfg.figure_dir / f'table1_{cfg.hull_rules[0]}.md').is_file()",
    ],
    "07_controls": [
        "# 07 Controls\nDoes distancing add anything? For one architecture, GAD's region beside what simpler means "
        "give at the same area: the matched-area baseline, GAD with supports trained with alpha = 0 (retraining "
        "alone), and SmoothGrad. RS, RC, deletion and insertion AUC and (synthetic data) the true object, paired per "
        "image with bootstrap intervals; and a sanity check by cascading randomisation.\n\n"
        "**Reads:** the models, attributions and hulls of notebooks 02-04. **Writes:** `<run>/<arch>/models/control_*.pt`, "
        "`<run>/<arch>/control_maps.pt`, `<run>/<arch>/controls.csv`, `<run>/<arch>/sanity.csv`, "
        "`figures/<run>/controls_*_<arch>.*`, `figures/<run>/sanity_<arch>.*`.",
        "family = stages.model_family(cfg, data)\n"
        "attr = stages.attributions(cfg, data, family)\n"
        "comp = stages.complexity(cfg, data, family, attr)\n"
        "ctrl = controls.controls(cfg, data, family, attr, comp)\n"
        "sane = controls.sanity_check(cfg, data, family, attr)\n"
        "written = controls.write_tables(cfg, ctrl, sane)\n"
        "written[f'controls_verdicts_{cfg.arch}']",
        "## GAD against each control\nMean of GAD minus the control per image and class, signed so that > 0 favours "
        "GAD (deletion: lower is better), with a 95% bootstrap interval and the share of images where GAD wins.",
        "display(Image(figures.forest(ctrl.paired, cfg.figure_dir / f'fig_controls_{cfg.arch}.png',\n"
        "                             f'GAD against its controls ({cfg.dataset}, {cfg.arch})')))\n"
        "written[f'controls_paired_{cfg.arch}']",
        "written[f'controls_means_{cfg.arch}']",
        "## Do the maps depend on the model?\nCascading randomisation of the whole family, top layer first "
        "(Adebayo et al., 2018): Spearman correlation of the original's, GAD's and the matched-area baseline's maps "
        "with the trained ones. "
        "A map that stays similar to the trained one hardly depends on the model.",
        "display(Image(figures.cascade(sane, cfg.figure_dir / f'fig_sanity_{cfg.arch}.png',\n"
        "                              f'Cascading randomisation ({cfg.dataset}, {cfg.arch})')))\n"
        "written[f'sanity_{cfg.arch}']",
        "## Checks",
        "assert set(ctrl.rows['map']) >= {'orig', 'gad', 'base', 'gad0', 'smooth'}\n"
        "assert (ctrl.paired['low'] <= ctrl.paired['high']).all()\n"
        "assert set(sane['map']) == {'orig', 'gad', 'base'}\n"
        "everything_random = sane[(sane['step'] == sane['step'].max()) & (sane['map'] == 'orig')]\n"
        "assert everything_random['spearman'].mean() < 0.99  # randomising every layer changes the maps",
    ],
}


def build(name: str, cells: list[str]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(new_markdown_cell(cells[0]))
    nb.cells.append(new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}))
    nb.cells.append(new_code_cell(SETUP))
    for text in cells[1:]:
        is_md = text.startswith("#")
        nb.cells.append(new_markdown_cell(text) if is_md else new_code_cell(text))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name}-{i}"
    return nb


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), ROOT / "notebooks" / f"{name}.ipynb")


if __name__ == "__main__":
    main()
