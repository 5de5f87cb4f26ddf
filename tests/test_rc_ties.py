"""tools/rc_ties.py: where RC < 1 fails, by how much of the image the original's hull covers."""

import pandas as pd


def test_ties_are_counted_per_band_of_the_original_hull():
    import rc_ties

    # two points of 10 x 10 images: hulls of 30, 60, 75 and 95 pixels; RC = 1 at the small two,
    # RC > 1 once, an empty original hull (RC NaN) left out
    rows = pd.DataFrame(
        {
            "point": ["a", "a", "b", "b", "b"],
            "area_orig": [30.0, 60.0, 75.0, 95.0, 0.0],
            "rc": [1.0, 1.0, 0.5, 1.2, float("nan")],
        }
    )
    row = rc_ties.ties(rows, pd.Series({"a": 100, "b": 100}))
    assert (row["points"], row["rows"]) == (2, 4)
    assert (row["RC = 1"], row["RC > 1"], row["original's hull"]) == ("50%", "25.0%", "65%")
    assert row["hull 0%-50%"] == "100% of 1" and row["hull 50%-70%"] == "100% of 1"
    assert row["hull 70%-80%"] == "0% of 1" and row["hull 90%-100%"] == "0% of 1"
    assert row["hull 80%-90%"] == "-"
