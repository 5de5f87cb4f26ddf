"""Reading a run's tables from figures/<run>/ for the summary tools: each CSV only after checking
that its stamp carries a key of the run's RUN.json, so a file left by another run (an earlier one,
or one stopped after notebook 06 wrote its tables and before its record) stops the tool in one
line instead of being counted under this record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from gadlib.runfiles import read_csv

MADE = "make that run first (its make reproduce command is in the README)"


def record(folder: Path) -> dict:
    """The run's RUN.json; exits with one line where there is none or it is not JSON."""
    path = Path(folder) / "RUN.json"
    if not path.is_file():
        sys.exit(f"error: {path} is missing: {MADE}")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        sys.exit(f"error: {path} is not a run record ({err}): make that run again")


def keys(rec: dict) -> set[str]:
    """The keys a table of the run may carry: its tables' and its controls'."""
    return {rec.get("tables_key"), *(rec.get("controls_keys") or {}).values()}


def read(path: Path, **kwargs) -> pd.DataFrame:
    """A table of a run, after checking that its stamp is of the run its RUN.json records."""
    again = f"run notebook 06 (07 for controls_* and sanity_*) for {path.parent.name} again"
    rec = record(path.parent)
    table, stamp = read_csv(path, **kwargs)
    if table is None:
        sys.exit(f"error: {path} is missing: {again}")
    if stamp is None or stamp.get("key") not in keys(rec):
        sys.exit(f"error: {path} was not made from the rows of the run in {path.parent / 'RUN.json'}: {again}")
    return table


def rules_of(folder: Path) -> dict[str, str]:
    """{hull rule: its label} of the run in `folder`, from its RUN.json: the rules it used, with
    its own hull_q and hull_tau ("top 50%", "10% of max" at the defaults)."""
    p = record(folder)["parameters"]
    labels = {"top_q": f"top {p['hull_q']:.0%}", "frac_max": f"{p['hull_tau']:.0%} of max"}
    return {rule: labels[rule] for rule in p["hull_rules"]}
