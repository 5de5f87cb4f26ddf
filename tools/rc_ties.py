"""Where RC < 1 fails: GAD's region is the original's own pixels that every support also ranks
high, so under top-q hulls (with the consensus's q, as the pipeline runs) its hull lies inside
the original's and RC <= 1 (METHOD.md; notebook 04 asserts it). Under 10%-of-max hulls GAD's map
may have a lower maximum than the original's and so keep pixels the original's rule did not:
there RC = 1 is an equal area (nearly always the same hull), and RC > 1 is possible. "RC < 1 for
most images" fails only through those two. This
reads each sweep's per-image rows (the run folders, `sweep_effects.read_sweep`) and prints, per
sweep, image size, training epochs and architecture, pooled over the points (seeds): the shares
of (method, image, target) rows with RC = 1 and RC > 1, the original's mean hull as a share of
the image, and the share of RC = 1 among the rows whose original hull covers each band of it.
Usage: python tools/rc_ties.py [--rule frac_max] SWEEP ... (names under figures/ and runs/)
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd
from reviewer_checks import frame

from gadlib.config import THRESHOLD_RULES, figures_root
from gadlib.errors import GADInputError
from gadlib.sweep_effects import read_sweep
from gadlib.tables import to_markdown

BANDS = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0)  # the original's hull area over the image's


def band_label(low: float, high: float) -> str:
    return f"hull {low:.0%}-{high:.0%}"


def ties(rc: pd.DataFrame, pixels: pd.Series) -> dict:
    """One row of the table: `rc` an architecture's per-image rows of one hull rule, `pixels` the
    image's pixel count per point."""
    defined = rc.dropna(subset=["rc"])
    share = defined["area_orig"] / defined["point"].map(pixels)
    bands = pd.cut(share, BANDS, include_lowest=True, right=True)
    row = {
        "points": defined["point"].nunique(),
        "rows": len(defined),
        "RC = 1": f"{(defined['rc'] == 1).mean():.0%}",
        "RC > 1": f"{(defined['rc'] > 1).mean():.1%}",
        "original's hull": f"{share.mean():.0%}",
    }
    for band, members in defined.groupby(bands, observed=False):
        label = band_label(band.left if band.left > 0 else 0.0, band.right)
        row[label] = f"{(members['rc'] == 1).mean():.0%} of {len(members)}" if len(members) else "-"
    return row


def main(*args: str) -> None:
    ap = argparse.ArgumentParser(
        prog="python tools/rc_ties.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("sweeps", nargs="+", help="sweep names (runs/<sweep>/ must be on this machine)")
    ap.add_argument("--rule", default="frac_max", choices=THRESHOLD_RULES, help="the hull rule")
    parsed = ap.parse_args(args)
    table, made_all = {}, []
    for name in parsed.sweeps:
        try:
            points, rc, _ = read_sweep(name)
        except GADInputError as err:
            sys.exit(f"error: {err}")
        made = {
            p: json.loads((figures_root() / name / p / "RUN.json").read_text())["parameters"] for p in points["point"]
        }
        made_all += made.values()
        pixels = pd.Series({p: params["image_size"] ** 2 for p, params in made.items()})
        rows = rc[rc["hull_rule"] == parsed.rule]
        if rows.empty:
            sys.exit(f"error: sweep {name!r} computed no hulls by rule {parsed.rule!r}")
        setting = rows["point"].map({p: (params["image_size"], params["train_epochs"]) for p, params in made.items()})
        for (size, epochs, arch), part in rows.groupby([setting.str[0], setting.str[1], "arch"], sort=False):
            table[(name, size, epochs, arch)] = ties(part, pixels)
    # the rule's label at the sweeps' own threshold (one for all, else both named)
    shown = {f"{p['hull_tau']:.0%}-of-max" if parsed.rule == "frac_max" else f"top-{p['hull_q']:.0%}" for p in made_all}
    rule = " / ".join(sorted(shown))
    print(
        f"RC = 1 (GAD's hull the original's) and RC > 1 under {rule} hulls, per sweep, image size, training "
        "epochs and architecture, pooled over the seeds; then, by how much of the image the original's hull "
        "covers, the share of its (method, image, target) rows with RC = 1 (of how many)\n"
    )
    print(to_markdown(frame(table, ["sweep", "image size", "epochs", "arch"])))


if __name__ == "__main__":
    main(*sys.argv[1:])
