"""tools/verdict_figure.py: the picture of the seed sweeps' verdicts draws seed_checks' counts,
pooled per bar, and refuses bars it cannot pool."""

import re
import shutil

import pandas as pd
import pytest

from gadlib.stats import count_text

from conftest import ROOT


def makefile_bars() -> list[str]:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")  # a value continued over lines
    return re.search(r"^VERDICT_BARS \?= (.+)$", makefile, re.M).group(1).split()


def test_the_committed_table_is_what_the_seed_sweeps_say():
    """figures/verdicts.csv, the table figures/verdicts.png draws (make seed-checks), is made from
    the committed sweeps' files as the Makefile lists them."""
    import verdict_figure

    bars = [re.sub(r"(^|\+)figures/", rf"\g<1>{ROOT}/figures/", b) for b in makefile_bars()]
    fresh = verdict_figure.shares_table(bars)
    committed = pd.read_csv(ROOT / "figures" / "verdicts.csv")
    pd.testing.assert_frame_equal(fresh, committed, check_dtype=False)
    assert "$(PY) tools/verdict_figure.py --out figures/verdicts.png $(VERDICT_BARS)" in (ROOT / "Makefile").read_text()


def counts(table: pd.DataFrame, bar: str, hulls: str, comparison: str) -> str:
    """The table's cells of one panel's bar, as seed_checks prints them (holds / fails / undecided,
    then the pale ones), each drawn verdict read back to its word."""
    import verdict_figure

    word = {shown: w for w, shown in verdict_figure.SHOWN.items()}
    assert len(word) == len(verdict_figure.SHOWN)  # no two verdicts drawn alike
    rows = table[(table["bar"] == bar) & (table["hulls"] == hulls) & (table["comparison"] == comparison)]
    return count_text({word[v]: n for v, n in zip(rows["verdict"], rows["cells"])})


def test_each_bar_counts_what_seed_checks_pools_and_two_sweeps_add_up():
    import seed_checks
    import verdict_figure

    seeds, size, size_seeds = (ROOT / "figures" / s for s in ("seeds", "size-birds", "size-birds-seeds"))
    table = verdict_figure.shares_table([str(seeds), f"{size}+{size_seeds}@image_size=224"])
    assert list(dict.fromkeys(table["bar"])) == [
        "synthetic, 32 px, ResNet18 (6 seeds, accuracy 0.98 to 1.00)",
        "birds, 224 px, ResNet18 (4 seeds, accuracy 0.77 to 0.84)",
    ]
    pooled = seed_checks.pooled(seed_checks.seed_rows(seeds, seed_checks.points(seeds)))
    for (_, _, hulls), row in pooled.items():
        for comparison in seed_checks.VERDICTS.values():
            bar = "synthetic, 32 px, ResNet18 (6 seeds, accuracy 0.98 to 1.00)"
            assert counts(table, bar, hulls, comparison) == row[comparison]
    # the size sweep's seed-0 point at 224 px and the seed sweep's three, added cell by cell
    both = {
        **seed_checks.seed_rows(size, seed_checks.points(size, {"image_size": 224})),
        **seed_checks.seed_rows(size_seeds, seed_checks.points(size_seeds, {"image_size": 224})),
    }
    row = seed_checks.pooled(both)[("all", "resnet18", "top 50%")]
    assert row["seeds"] == 4 and row["RS GAD vs Base"] == "4 / 12 / 24"  # README, question 9
    bar = "birds, 224 px, ResNet18 (4 seeds, accuracy 0.77 to 0.84)"
    assert counts(table, bar, "top 50%", "RS GAD vs Base") == "4 / 12 / 24"
    # seeds 1 to 3 gave 5 of their verdicts on the supplementary region on 1 to 4 images
    row = seed_checks.pooled(both)[("all", "resnet18", "10% of max")]
    assert row["RS GAD vs Sup"] == "9 / 1 / 25 (5 too few images)"
    assert counts(table, bar, "10% of max", "RS GAD vs Sup") == row["RS GAD vs Sup"]


def test_cells_neither_side_wins_are_drawn_under_their_own_names(tmp_path):
    """A tie, a cell on too few images and an undefined one are each drawn apart from the others
    (an undefined cell was once drawn as "no difference")."""
    import verdict_figure

    from gadlib.stats import NO_DIFFERENCE, TOO_FEW, UNDEFINED, VERDICTS

    assert set(verdict_figure.SHOWN) == set(VERDICTS)
    shown = [verdict_figure.SHOWN[w] for w in (NO_DIFFERENCE, TOO_FEW, UNDEFINED)]
    assert shown == ["no difference", "too few images", "undefined"]
    table = pd.DataFrame(
        [("bar", "top 50%", "RS GAD vs Sup", v, 1) for v in ["holds", "fails", "undecided", *shown]],
        columns=["bar", "hulls", "comparison", "verdict", "cells"],
    )
    from gadlib import figures

    figures.verdict_shares(table, tmp_path / "v.png", "title")  # a colour for each, else it refuses
    assert (tmp_path / "v.png").stat().st_size > 0


def test_the_picture_and_its_table_are_written_side_by_side(tmp_path, capsys):
    import verdict_figure

    out = tmp_path / "v.png"
    verdict_figure.main(
        "--out", str(out), str(ROOT / "figures" / "seeds-birds"), str(ROOT / "figures" / "seeds-birds-vgg16")
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tmp_path / "v.csv")
    assert set(table["bar"]) == {
        "birds, 64 px, ResNet18 (6 seeds, accuracy 0.77 to 0.81)",
        "birds, 64 px, VGG16 (6 seeds, accuracy 0.77 to 0.84)",
    }
    # every panel's bar counts all of its cells: 6 seeds x 5 methods x 2 classes
    assert set(table.groupby(["bar", "hulls", "comparison"])["cells"].sum()) == {60}
    assert "v.png and" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bars, message",
    [
        (["seeds-vgg16+seeds-birds"], "pools points of other settings (birds, 64 px; synthetic, 32 px; they differ in"),
        (["seeds-birds+seeds-birds"], "is given twice among the sweeps"),
        (["seeds", "seeds"], "are both 'synthetic, 32 px, ResNet18 (6 seeds, accuracy 0.98 to 1.00)': pool them"),
        (["size-birds"], "sweeps image_size, not the seed alone"),
        (["size-birds@image_size=96"], "has no point of image_size=96"),
        (["+"], "names no sweep"),
    ],
)
def test_a_bar_it_cannot_pool_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys, bars, message):
    import verdict_figure

    out = tmp_path / "v.png"
    bars = ["+".join(str(ROOT / "figures" / s) if s else "" for s in b.split("+")) for b in bars]
    with pytest.raises(SystemExit) as stop:
        verdict_figure.main("--out", str(out), *bars)
    assert message in str(stop.value.code) and "\n" not in str(stop.value.code)
    assert not out.exists() and not out.with_suffix(".csv").exists() and capsys.readouterr().out == ""


def test_one_seed_of_one_architecture_twice_in_a_bar_is_refused(tmp_path):
    """Two sweeps of the same seeds pool only where their architectures differ."""
    import verdict_figure

    copy = shutil.copytree(ROOT / "figures" / "seeds-birds", tmp_path / "again")
    with pytest.raises(SystemExit) as stop:
        verdict_figure.shares_table([f"{ROOT / 'figures' / 'seeds-birds'}+{copy}"])
    assert "has seed 0 of resnet18 twice" in str(stop.value.code)
    table = verdict_figure.shares_table(
        [f"{ROOT / 'figures' / 'seeds-birds'}+{ROOT / 'figures' / 'seeds-birds-vgg16'}"]
    )
    assert set(table["bar"]) == {
        "birds, 64 px, ResNet18 (6 seeds, accuracy 0.77 to 0.81)",
        "birds, 64 px, VGG16 (6 seeds, accuracy 0.77 to 0.84)",
    }


def test_a_bar_names_the_settings_its_sweep_set_and_its_originals_accuracy():
    """VGG16 on cats vs dogs at 8 epochs (the profile's) is at chance, at 24 it is not: the two are
    two bars, each saying so, and one bar of both is refused."""
    import verdict_figure

    eight, longer = (str(ROOT / "figures" / s) for s in ("seeds-catsdogs-vgg16", "epochs-catsdogs-vgg16"))
    table = verdict_figure.shares_table([eight, longer])
    assert list(dict.fromkeys(table["bar"])) == [
        "cats vs dogs, 64 px, VGG16 (6 seeds, accuracy 0.50 to 0.58)",
        "cats vs dogs, 64 px, train_epochs=24, VGG16 (6 seeds, accuracy 0.61 to 0.68)",
    ]
    # README, question 7: at 24 epochs GAD's RS is behind the matched-area baseline's in 18 cells, ahead in 3
    bar = "cats vs dogs, 64 px, train_epochs=24, VGG16 (6 seeds, accuracy 0.61 to 0.68)"
    assert counts(table, bar, "top 50%", "RS GAD vs Base") == "3 / 18 / 39"
    # ResNet18's seeds beside VGG16's 24-epoch ones: no seed twice, but another setting
    with pytest.raises(SystemExit) as stop:
        verdict_figure.shares_table([f"{ROOT / 'figures' / 'seeds-catsdogs'}+{longer}"])
    shown = "(cats vs dogs, 64 px; cats vs dogs, 64 px, train_epochs=24; they differ in train_epochs)"
    assert f"pools points of other settings {shown}" in str(stop.value.code)
