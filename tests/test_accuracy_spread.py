"""tools/accuracy_spread.py: its variants train notebook 02's original, with and without the
convolutions on small maps as linear layers."""

import dataclasses
from unittest import mock

import torch
from accuracy_spread import train_original, within_one_point

from gadlib import convs, runfiles, stages
from gadlib.config import RunConfig
from gadlib.data import synthetic_dataset


def test_variants_train_notebook_02s_original_with_and_without_small_map_convs(tmp_path):
    cfg = RunConfig.build("smoke", runs_dir=str(tmp_path), n_train=64, n_test=16)
    data = synthetic_dataset(cfg)
    cpu = torch.device("cpu")
    split = runfiles.split_fingerprint(data.train)
    pipeline, _ = stages.original_classifier(dataclasses.replace(cfg, seed=3), data, cpu, split)
    written = sorted(tmp_path.rglob("*"))
    linear_paths = []
    real = convs._linear_weight
    with mock.patch.object(convs, "_linear_weight", side_effect=lambda *a: linear_paths.append(a) or real(*a)):
        small = train_original(cfg, data, 3, "small-maps", cpu)
        small_calls = len(linear_paths)
        plain = train_original(cfg, data, 3, "plain-convs", cpu)
    # ResNet18 at 32 px: its third and fourth stages see 2 x 2 and 1 x 1 maps
    assert small_calls > 0 and len(linear_paths) == small_calls
    assert pipeline.state_dict().keys() == small.state_dict().keys() == plain.state_dict().keys()
    for name, value in pipeline.state_dict().items():
        assert torch.equal(value, small.state_dict()[name]), name
    assert sorted(tmp_path.rglob("*")) == written  # the tool trains in a throwaway run folder


def test_within_one_point_reads_the_whole_interval():
    assert within_one_point(-0.01, 0.01) == "within 1 point"
    assert within_one_point(0.011, 0.05) == within_one_point(-0.05, -0.02) == "more than 1 point apart"
    assert within_one_point(-0.02, 0.005).startswith("within 1 point not shown")
    assert within_one_point(0.005, 0.02).startswith("within 1 point not shown")
