"""A run started again reuses finished supports and attributions, and recomputes exactly what a
changed setting affects."""

from unittest import mock

import pandas as pd
import pytest
import torch

from gadlib import RunConfig, runfiles, stages
from gadlib.data import load_dataset


def _mtime(path):
    return path.stat().st_mtime_ns


def test_stages_resume_and_recompute_what_a_setting_touches(tmp_path):
    base = dict(profile="smoke", runs_dir=str(tmp_path), alphas=[2.0], n_eval=4, methods=["saliency"], precision="fp32")
    cfg = RunConfig.build(**base)
    data = load_dataset(cfg)
    family = stages.model_family(cfg, data)
    maps = stages.attributions(cfg, data, family).maps
    original, support = cfg.arch_dir / "models" / "original.pt", cfg.arch_dir / "models" / "support_2_2.pt"
    saliency = cfg.arch_dir / "attributions" / "saliency.pt"
    stamps = {p: _mtime(p) for p in (original, support, saliency)}

    with mock.patch.object(runfiles, "fingerprint", wraps=runfiles.fingerprint) as hashed:
        again_family = stages.model_family(cfg, data)
    assert not hashed.called  # read back, no weights hashed again (VGG16 at 224 px: 0.5 s a notebook)
    assert again_family.fingerprints[0] == runfiles.fingerprint(again_family.original)  # what its records say
    again = stages.attributions(cfg, data, again_family).maps
    assert {p: _mtime(p) for p in stamps} == stamps  # nothing recomputed
    assert torch.equal(again["saliency"], maps["saliency"])

    saliency.unlink()  # a cached result equals a fresh one
    fresh = stages.attributions(cfg, data, stages.model_family(cfg, data)).maps
    torch.testing.assert_close(fresh["saliency"], maps["saliency"])

    longer = RunConfig.build(**{**base, "support_epochs": 2})
    stages.attributions(longer, data, stages.model_family(longer, data))
    assert _mtime(original) == stamps[original]  # the classifier does not depend on support epochs
    assert _mtime(support) != stamps[support]


def test_a_support_is_read_back_only_at_the_position_it_was_trained_at(tmp_path):
    """Support i trains with seed + i + 1, so alpha 4 of alphas [2, 4] is another model than
    alpha 4 of alphas [4]: the second run into the folder must train its own, the one GAD.fit
    gives for alphas [4]."""
    from gadlib.gad import GAD

    base = dict(profile="smoke", runs_dir=str(tmp_path), n_eval=4, methods=["saliency"])
    first = RunConfig.build(**base, alphas=[2.0, 4.0])
    data = load_dataset(first)
    two = stages.model_family(first, data)
    alone = stages.model_family(RunConfig.build(**base, alphas=[4.0]), data)
    assert two.fingerprints[0] == alone.fingerprints[0]  # the same original
    assert two.fingerprints[2] != alone.fingerprints[1]
    fitted = GAD(alone.original, "saliency", alphas=[4.0]).fit(
        data.train.images,
        data.train.labels,
        epochs=first.support_epochs,
        lr=first.support_lr,
        batch_size=first.batch_size,
        seed=first.seed,
    )
    for a, b in zip(fitted.supports[0].state_dict().values(), alone.supports[0].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_logit_space_is_read_back_for_the_same_models_and_equals_a_fresh_one(tmp_path, monkeypatch):
    cfg = RunConfig.build(profile="smoke", runs_dir=str(tmp_path), alphas=[2.0, 8.0])
    data = load_dataset(cfg)
    family = stages.model_family(cfg, data)
    longer = RunConfig.build(profile="smoke", runs_dir=str(tmp_path / "b"), alphas=[2.0, 8.0], support_epochs=2)
    other = stages.model_family(longer, data)  # other supports
    fresh = stages.logit_space(cfg, data, family)

    def no_prediction(*args, **kwargs):
        raise AssertionError("the logit space was computed again")

    monkeypatch.setattr(stages, "predict_logits", no_prediction)
    pd.testing.assert_frame_equal(stages.logit_space(cfg, data, family), fresh)  # dtypes too: float32 logits
    with pytest.raises(AssertionError, match="computed again"):  # the file is of other models
        stages.logit_space(cfg, data, other)
