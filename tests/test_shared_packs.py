"""The whole notebook chain, smoke settings, on each real image pack in ../shared/data. The
controls (notebook 07) run on one pack: they read real images the same way for both, and make
test runs them on the synthetic data too (nbval)."""

import json

import pytest

from gadlib.reproduce import run_chain
from gadlib.runfiles import RunFiles

from conftest import SHARED_DATA

PACKS = ["catsdogs", "cub_warbler_sparrow"]


@pytest.mark.slow
@pytest.mark.parametrize("pack", PACKS)
def test_notebook_chain_on_shared_pack(pack, tmp_path, monkeypatch):
    if not (SHARED_DATA / pack).is_dir():
        pytest.skip(f"{SHARED_DATA / pack} is not here: the real-image packs sit beside the repository")
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAD_FIGURES_DIR", str(tmp_path / "figures"))
    cfg = run_chain(
        {"profile": "smoke", "dataset": "folder", "data_dir": str(SHARED_DATA / pack)},
        ["resnet18"],
        log=lambda *_: None,
        with_controls=pack == "cub_warbler_sparrow",
    )
    table1 = (cfg.figure_dir / "table1_top_q.md").read_text()
    assert "resnet18" in table1 and "GAD 1" in table1
    assert (cfg.figure_dir / "fig5_original_vs_gad.png").is_file()
    drawn = RunFiles(cfg.with_arch("resnet18"))  # by notebooks 02 and 07
    assert drawn.logit_space_figure.name == "fig1_logit_space_resnet18.png" and drawn.logit_space_figure.is_file()
    with_controls = pack == "cub_warbler_sparrow"
    assert drawn.controls_figure.is_file() is drawn.sanity_figure.is_file() is with_controls
    record = json.loads((cfg.figure_dir / "RUN.json").read_text())
    assert record["archs"] == ["resnet18"] and record["parameters"]["data_dir"] == str((SHARED_DATA / pack).resolve())
    assert set(record["seconds"]) >= {"01_data", "03_attributions_resnet18", "06_figures"}
    assert ("07_controls_resnet18" in record["seconds"]) == (pack == "cub_warbler_sparrow")
    assert set(record["precision"]["resnet18"].values()) <= {"fp32", "bf16"}
