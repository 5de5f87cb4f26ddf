import torch

from gadlib.data import Split
from gadlib.training import distanced_targets, support_report, train_support


def test_distanced_targets_match_hand_values():
    z = torch.tensor([[1.0, -1.0], [0.5, -0.6], [-0.9, 0.8]])
    labels = torch.tensor([0, 0, 1])
    y = distanced_targets(z, labels, alpha_c1=2.0, alpha_c2=3.0)
    # class-1 images lose alpha_c1 on logit 2; class-2 images lose alpha_c2 on logit 1
    assert torch.equal(y, torch.tensor([[1.0, -3.0], [0.5, -2.6], [-3.9, 0.8]]))
    assert torch.equal(z, torch.tensor([[1.0, -1.0], [0.5, -0.6], [-0.9, 0.8]]))  # input untouched


def test_distancing_a_chosen_pair_of_an_m_class_model_leaves_other_logits():
    z = torch.zeros(3, 4)
    y = distanced_targets(z, torch.tensor([1, 3, 2]), 2.0, 4.0, c1=1, c2=3)
    assert torch.equal(y, torch.tensor([[0, 0, 0, -2.0], [0, -4.0, 0, 0], [0, 0, 0, 0]]))


def test_fresh_support_starts_from_the_original_weights(linear_model):
    split = Split(torch.randint(0, 255, (4, 3, 6, 6), dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    support, history = train_support(linear_model, split, torch.zeros(4, 2), epochs=0, lr=4e-5, batch_size=2)
    assert support is not linear_model and history == []
    for (name, a), (_, b) in zip(linear_model.state_dict().items(), support.state_dict().items()):
        assert torch.equal(a, b), name


def test_support_training_moves_outputs_towards_targets(linear_model):
    split = Split(torch.randint(0, 255, (16, 3, 6, 6), dtype=torch.uint8), torch.arange(16) % 2)
    targets = torch.randn(16, 2) * 3
    _, history = train_support(linear_model, split, targets, epochs=20, lr=1e-2, batch_size=8)
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
    targets = distanced_targets(z, labels, 2.0, 2.0)
    support, history = train_support(model, split, targets, epochs=60, lr=3e-3, batch_size=16)
    s = predict_logits(support, normalize(images))
    row = support_report(z, s, labels, 2.0, 2.0)
    before = support_report(z, z, labels, 2.0, 2.0)  # the original itself as a "support"
    assert row["mse"] < 0.5 * before["mse"] and history[-1] < history[0]
    gap = lambda logits: (logits[:, 0] - logits[:, 1]) * (1 - 2 * labels)  # noqa: E731  margin of the true class
    assert gap(s).mean() > gap(z).mean() + 1.0
    assert row["spearman_logit1"] > 0.6 and row["spearman_logit2"] > 0.6
