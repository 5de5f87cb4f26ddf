import pandas as pd
import pytest
import torch

from gadlib import runfiles
from gadlib.data import Split
from gadlib.training import (
    alpha_columns,
    alpha_text,
    distanced_targets,
    family_report,
    model_names,
    support_report,
    train_support,
    warn_if_order_lost,
)

from conftest import ROOT


def test_distanced_targets_match_hand_values():
    z = torch.tensor([[1.0, -1.0], [0.5, -0.6], [-0.9, 0.8]])
    labels = torch.tensor([0, 0, 1])
    y = distanced_targets(z, labels, (2.0, 3.0))
    # class-1 images lose alpha_c1 on logit 2; class-2 images lose alpha_c2 on logit 1
    assert torch.equal(y, torch.tensor([[1.0, -3.0], [0.5, -2.6], [-3.9, 0.8]]))
    assert torch.equal(z, torch.tensor([[1.0, -1.0], [0.5, -0.6], [-0.9, 0.8]]))  # input untouched


def _paper_rule(logits, labels, alpha_c1, alpha_c2):
    """METHOD.md step 1 as the paper states it for two classes, written out by hand."""
    y = logits.clone()
    y[labels == 0, 1] -= alpha_c1
    y[labels == 1, 0] -= alpha_c2
    return y


def test_two_class_distancing_equals_the_papers_rule_exactly():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        z = torch.randn(64, 2, generator=gen) * 5
        labels = torch.randint(0, 2, (64,), generator=gen)
        a1, a2 = (float(v) for v in torch.rand(2, generator=gen) * 10)  # not round numbers
        assert torch.equal(distanced_targets(z, labels, (a1, a2)), _paper_rule(z, labels, a1, a2))
        assert torch.equal(distanced_targets(z, labels, a1), _paper_rule(z, labels, a1, a1))


def test_m_class_distancing_lowers_every_other_logit_by_the_images_alpha():
    z = torch.zeros(3, 4)
    y = distanced_targets(z, torch.tensor([1, 3, 2]), (1.0, 2.0, 3.0, 4.0))
    assert torch.equal(y, torch.tensor([[-2.0, 0, -2, -2], [-4, -4, -4, 0], [-3, -3, 0, -3]]))
    scalar = distanced_targets(z, torch.tensor([1, 3, 2]), 2.0)  # one alpha for every class
    assert torch.equal(scalar, torch.tensor([[-2.0, 0, -2, -2], [-2, -2, -2, 0], [-2, -2, 0, -2]]))


def test_a_chosen_pair_moves_only_its_two_logits_as_method_md_states():
    z = torch.tensor([[5.0, 1, 0], [1, 5, 0], [1, 1, 5]])
    y = distanced_targets(z, torch.tensor([0, 1, 2]), (2.0, 3.0), pair=(0, 1))
    # class-0 images lose alpha_c1 on logit 1, class-1 images alpha_c2 on logit 0; the rest stays
    assert torch.equal(y, torch.tensor([[5.0, -1, 0], [-2, 5, 0], [1, 1, 5]]))
    gen = torch.Generator().manual_seed(1)
    z2, labels = torch.randn(32, 2, generator=gen), torch.randint(0, 2, (32,), generator=gen)
    assert torch.equal(distanced_targets(z2, labels, (2.5, 4.0), pair=(0, 1)), _paper_rule(z2, labels, 2.5, 4.0))


def test_alphas_of_the_wrong_length_are_a_one_line_error():
    import pytest

    from gadlib import GADInputError

    with pytest.raises(GADInputError, match="give one number, or one per class"):
        distanced_targets(torch.zeros(3, 4), torch.tensor([0, 1, 2]), (2.0, 4.0))
    with pytest.raises(GADInputError, match="values for the pair \\(0, 1\\): give one number, or one per class"):
        distanced_targets(torch.zeros(3, 4), torch.tensor([0, 1, 2]), (2.0, 4.0, 6.0), pair=(0, 1))
    with pytest.raises(GADInputError, match="give two different classes of the model's 4"):
        distanced_targets(torch.zeros(3, 4), torch.tensor([0, 1, 2]), 2.0, pair=(1, 1))


def test_fresh_support_starts_from_the_original_weights(linear_model):
    split = Split(torch.randint(0, 255, (4, 3, 6, 6), dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    support, history = train_support(linear_model, split.images, torch.zeros(4, 2), epochs=0, lr=4e-5, batch_size=2)
    assert support is not linear_model and history == []
    for (name, a), (_, b) in zip(linear_model.state_dict().items(), support.state_dict().items()):
        assert torch.equal(a, b), name


def test_support_training_moves_outputs_towards_targets(linear_model):
    split = Split(torch.randint(0, 255, (16, 3, 6, 6), dtype=torch.uint8), torch.arange(16) % 2)
    targets = torch.randn(16, 2) * 3
    _, history = train_support(linear_model, split.images, targets, epochs=20, lr=1e-2, batch_size=8)
    assert history[-1] < history[0]


def test_report_of_a_trained_support_shows_it_fits_the_distanced_targets():
    """A real support: regressed onto distanced targets, it is closer to them than the original
    is, separates the classes better, and keeps the order of the original's logits."""
    from gadlib.data import normalize
    from gadlib.models import predict_logits

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 2)).eval()
    images = torch.randint(0, 255, (64, 3, 6, 6), dtype=torch.uint8)
    labels = (predict_logits(model, normalize(images)).argmax(1) + (torch.arange(64) % 8 == 0)) % 2  # mostly right
    split = Split(images, labels)
    z = predict_logits(model, normalize(images))
    targets = distanced_targets(z, labels, 2.0)
    support, history = train_support(model, split.images, targets, epochs=60, lr=3e-3, batch_size=16)
    s = predict_logits(support, normalize(images))
    row = support_report(z, s, labels, 2.0)
    before = support_report(z, z, labels, 2.0)  # the original itself as a "support"
    assert row["mse"] < 0.5 * before["mse"] and history[-1] < history[0]
    gap = lambda logits: (logits[:, 0] - logits[:, 1]) * (1 - 2 * labels)  # noqa: E731  margin of the true class
    assert gap(s).mean() > gap(z).mean() + 1.0
    assert row["spearman_logit1"] > 0.6 and row["spearman_logit2"] > 0.6


def test_a_frozen_support_onto_its_originals_own_logits_stays_the_original():
    """alpha = 0 in frozen mode is the control in which nothing is learned: the targets are the
    original's logits through the same forward the training runs (at 32 px ResNet18's and VGG16's
    convolutions on 1 x 1 and 2 x 2 maps run as linear layers there), so the loss is zero and the
    weights do not move. Targets from plain convolutions differ by rounding, which Adam turns
    into steps of about the learning rate."""
    from gadlib.models import build_model, predict_logits
    from gadlib.runfiles import fingerprint

    for arch in ("resnet18", "vgg16"):
        torch.manual_seed(0)
        model = build_model(arch, 2, image_size=32).eval()
        for m in model.modules():  # batch statistics as a trained model has them
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        images = torch.randint(0, 255, (32, 3, 32, 32), dtype=torch.uint8)
        labels = torch.arange(32) % 2
        targets = distanced_targets(predict_logits(model, images), labels, 0.0)
        support, history = train_support(
            model, images, targets, epochs=1, lr=4e-5, batch_size=16, mode="frozen", precision="fp32"
        )
        assert history == [0.0], arch
        assert fingerprint(support) == fingerprint(model), arch


def test_the_reports_alpha_columns_are_per_class_and_a_pairs_other_classes_are_zero():
    """alpha_c<k>: what the images of class k have their other logits lowered by, so a pair's
    support of a three-class model has 0 for the class outside the pair (its images stay)."""
    assert alpha_columns(2, 2) == {"alpha_c1": 2.0, "alpha_c2": 2.0}
    assert alpha_columns((2, 6), 2) == {"alpha_c1": 2.0, "alpha_c2": 6.0}
    assert alpha_columns(4, 3) == {"alpha_c1": 4.0, "alpha_c2": 4.0, "alpha_c3": 4.0}
    assert alpha_columns((2, 6), 3, pair=(2, 0)) == {"alpha_c1": 6.0, "alpha_c2": 0.0, "alpha_c3": 2.0}
    assert alpha_columns(4, 3, pair=(1, 2)) == {"alpha_c1": 0.0, "alpha_c2": 4.0, "alpha_c3": 4.0}
    assert [alpha_text(a) for a in (2, (2, 2), (2, 2, 4), (0.0, 2.0, 6.0))] == ["2", "2", "2/2/4", "0/2/6"]
    # the report's rows carry them, beside the targets they were distanced by
    z = torch.randn(30, 3)
    labels = torch.arange(30) % 3
    row = support_report(z, z, labels, (2, 6), pair=(2, 0))
    assert {k: row[k] for k in ("alpha_c1", "alpha_c2", "alpha_c3")} == {
        "alpha_c1": 6.0,
        "alpha_c2": 0.0,
        "alpha_c3": 2.0,
    }
    # a support equal to the original misses the targets by alpha on one logit of the pair's images
    assert row["mse"] == pytest.approx((10 * 2**2 + 10 * 6**2) / (30 * 3), rel=1e-6)
    # the pair in the order given, not the classes': images of c1 = 2 lower logit c2 = 0 by
    # alpha_c1 = 2, images of c2 = 0 lower logit 2 by 6, class 1's stay (the MSE above is the
    # same either way, with ten images of each class)
    got = distanced_targets(torch.zeros(3, 3), torch.tensor([0, 1, 2]), (2.0, 6.0), pair=(2, 0))
    assert torch.equal(got, torch.tensor([[0.0, 0.0, -6.0], [0.0, 0.0, 0.0], [-2.0, 0.0, 0.0]]))


def test_supports_that_lose_the_originals_order_are_warned_about_where_the_committed_runs_have_them(recwarn):
    """VGG16 on cats vs dogs at 24 epochs, seed 2: every support's lowest Spearman with the
    original is below 0.5 (its models.csv); the synthetic default run's supports keep the order."""
    lost, _ = runfiles.read_csv(ROOT / "figures" / "epochs-catsdogs-vgg16" / "train_epochs-24__seed-2" / "models.csv")
    kept, _ = runfiles.read_csv(ROOT / "figures" / "synthetic-default" / "models.csv")
    for arch, report in [*kept.groupby("arch"), *lost.groupby("arch")]:
        warn_if_order_lost(report, f"OF {arch}")
    said = [str(w.message) for w in recwarn]
    assert len(said) == 1 and "THE SUPPORTS OF vgg16 FOR ALPHA 2, 4, 6, 8 DO NOT KEEP THE ORDER" in said[0]
    assert "Spearman down to -0.83" in said[0]


def test_a_models_report_names_its_original_even_beside_a_support_of_alpha_0():
    """The tools read models.csv by these names: a support whose alphas are 0 (a control's, or a
    class's) is no original, and per-class alphas name their support apart."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    images, labels = torch.randn(20, 3, 2, 2), torch.arange(20) % 2
    alphas = [(0.0, 0.0), (2.0, 2.0), (2.0, 6.0)]
    report = family_report(model, [model] * 3, alphas, images, labels)
    two = pd.concat([report.assign(arch="a"), report.assign(arch="b")], ignore_index=True)
    names = ["original", "support 0", "support 2", "support 2/6"]
    assert model_names(two).tolist() == names * 2
