"""tools/accuracy_spread.py: its variants train notebook 02's original with and without the
convolutions on small maps as linear layers, and in bf16; its reading of the interval."""

import dataclasses
from unittest import mock

import pytest
import torch
from accuracy_spread import main, train_original, within_one_point

from gadlib import convs, runfiles, stages, training
from gadlib.config import RunConfig
from gadlib.data import synthetic_dataset


@pytest.fixture
def smoke():
    cfg = RunConfig.build("smoke", n_train=64, n_test=16)
    return cfg, synthetic_dataset(cfg)


def test_variants_train_notebook_02s_original_with_and_without_small_map_convs(smoke, tmp_path):
    cfg, data = smoke
    cpu = torch.device("cpu")
    split = runfiles.split_fingerprint(data.train)
    pipeline, _ = stages.original_classifier(dataclasses.replace(cfg, seed=3, runs_dir=str(tmp_path)), data, cpu, split)
    tool_runs = tmp_path / "tool"
    cfg = dataclasses.replace(cfg, runs_dir=str(tool_runs))  # the tool must train in its own throwaway folder
    linear_paths = []
    real = convs._linear_weight
    with mock.patch.object(convs, "_linear_weight", side_effect=lambda *a: linear_paths.append(a) or real(*a)):
        small = train_original(cfg, data, 3, "small-maps", cpu)
        small_calls = len(linear_paths)
        train_original(cfg, data, 3, "plain-convs", cpu)
    # ResNet18 at 32 px: its third and fourth stages see 2 x 2 and 1 x 1 maps
    assert small_calls > 0 and len(linear_paths) == small_calls
    for name, value in pipeline.state_dict().items():  # the same seed trains the same weights
        assert torch.equal(value, small.state_dict()[name]), name
    assert not tool_runs.exists()  # nothing written to, or read from, the caller's run folders


def test_bf16_variant_trains_under_train_precision_bf16(smoke):
    cfg, data = smoke
    asked = []
    real = training.uses_bf16
    with mock.patch.object(training, "uses_bf16", side_effect=lambda d, p="auto": asked.append(p) or real(d, p)):
        train_original(cfg, data, 0, "small-maps", torch.device("cpu"))
        train_original(cfg, data, 0, "bf16", torch.device("cpu"))
    assert asked == [cfg.train_precision, "bf16"] and cfg.train_precision != "bf16"


def test_main_prints_each_seed_and_the_paired_differences(capsys):
    main(["--profile", "smoke", "--seeds", "0", "1", "--variants", "small-maps", "plain-convs"])
    out = capsys.readouterr().out
    assert out.startswith("Test accuracy of the original classifier")  # no heading: docs/reproducibility.md embeds it
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == ["| seed", "| 0", "| 1", "| mean", "| sd over seeds", "| range"]
    assert "plain-convs - small-maps, paired by seed: mean" in out and "too few seeds to tell" in out


def test_within_one_point_reads_the_whole_interval():
    assert within_one_point(-0.01, 0.01, 10) == "within 1 point"
    assert within_one_point(0.011, 0.05, 10) == within_one_point(-0.05, -0.02, 10) == "more than 1 point apart"
    assert within_one_point(-0.02, 0.005, 10).startswith("within 1 point not shown")
    assert within_one_point(0.005, 0.02, 10).startswith("within 1 point not shown")
    assert within_one_point(0.0, 0.0, 1).startswith("too few seeds")  # one seed's interval is a point
    assert within_one_point(0.0, 0.0, 4).startswith("too few seeds")
    assert within_one_point(0.0, 0.0, 5) == "within 1 point"
