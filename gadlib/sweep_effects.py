"""What a sweep shows (notebook 08): for every swept parameter and value, the share of images
with RC < 1, the RS gains of GAD over the supplementary region and over the matched-area
baseline, GAD's gain over that baseline in logit change (RS x hull area), its gains in RS and
in logit change over the hull-matched baseline (as much hull as GAD), and how the hulls' areas
compare, pooled over every point with that value, with seeded bootstrap intervals that resample
whole pictures: a picture's rows, under both targets and at every point that evaluates it, are
one cluster (`_pictures`), as notebook 07 resamples whole images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import notices
from .config import figures_root, runs_root
from .data import eval_indices
from .errors import GADInputError
from .runfiles import DATA_FIELDS, LATER_DEFAULTS, _hash, load, normalise, read_csv, read_key
from .stats import TOO_FEW, cluster_bootstrap, count_verdict
from .sweep import NOT_HERE, effects_paths, listed_record, points_not_here, read_context, read_points, run_folder_whole
from .tables import hull_areas, logit_change_gain, method_label

MEASURES = {
    "share RC<1": "share of images whose GAD hull is smaller than the original's",
    "RS GAD - Sup": "RS of the GAD hull minus RS of the supplementary region",
    "RS GAD - Base": "RS of the GAD hull minus RS of the matched-area baseline's hull",
    # RS is per hull pixel, and the baseline's hull is smaller than GAD's for most images (it keeps
    # as many pixels, not as much hull area: tables.baseline_check), which alone favours its RS
    "change GAD - Base": "logit change (RS x hull area) of the GAD hull minus the matched-area baseline's",
    # at (nearly) equal hull area: the hull-matched baseline keeps as much hull as GAD, or a little
    # more, so RS leans to GAD against the logit change (tables.both_measures)
    "RS GAD - Base(hull)": "RS of the GAD hull minus RS of the hull-matched baseline's hull",
    "change GAD - Base(hull)": "logit change of the GAD hull minus the hull-matched baseline's",
    # why the two RS gains over the baseline can differ in sign (tables.hull_areas)
    "share Base hull smaller": "share of images whose matched-area baseline's hull is smaller than GAD's",
    "Base / GAD hull": "the matched-area baseline's hull area over GAD's",
    "Base(hull) / GAD hull": "the hull-matched baseline's hull area over GAD's (at least 1)",
}

# The value each measure's interval is read against: half of the images for a share, equal areas
# for the ratio, else no gain.
REFERENCES = {measure: 0.0 for measure in MEASURES} | {
    "share RC<1": 0.5,
    "share Base hull smaller": 0.5,
    "Base / GAD hull": 1.0,
    "Base(hull) / GAD hull": 1.0,
}


# the measures that pool tables.hull_areas' columns: they describe the two hulls, and are no gain
HULL_MEASURES = {
    "share Base hull smaller": "Base hull smaller",
    "Base / GAD hull": "Base / GAD hull",
    "Base(hull) / GAD hull": "Base(hull) / GAD hull",
}
# the measures where a higher value is better for GAD (alpha_selection's best in hindsight)
GAINS = tuple(m for m in MEASURES if m not in HULL_MEASURES)


def reference(measure: str) -> float:
    return REFERENCES[measure]


def interval_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per measure, how many of the table's (parameter, value, architecture, method) cells have
    their interval above, containing or below the measure's `reference` (and how many rest on
    too few pictures, `stats.min_pairs`, where the table gives `n`, or have none: no image with a
    value)."""
    ref = table["measure"].map(reference)
    where = pd.Series("contains", index=table.index)
    where = where.mask(table["low"] > ref, "above").mask(table["high"] < ref, "below")
    if "n" in table:  # the bootstrap of one picture is that picture: one-sided by construction
        where = where.mask(table["n"].map(count_verdict).eq(TOO_FEW), "too few")
    where = where.mask(table["low"].isna() | table["high"].isna(), "undefined")
    counts = where.groupby(table["measure"], sort=False).value_counts().unstack(fill_value=0)
    columns = ["above", "contains", "below"] + [c for c in ("too few", "undefined") if c in counts]
    present = set(table["measure"])
    return counts.reindex(columns=columns, fill_value=0).reindex([m for m in MEASURES if m in present])


# interval_counts' columns as the effects .md names them
COUNT_NAMES = {
    "above": "above the reference",
    "contains": "contain it",
    "below": "below it",
    "too few": "too few pictures",
    "undefined": "no interval",
}


def value_label(record: dict, column: str, labels: pd.Series) -> str:
    """A swept setting's value for a point made by a grid without it (an index keeps the points of
    every grid of a sweep): its RUN.json's, as the grids label an equal value ([2, 4] for [2.0,
    4.0]), so that the point is pooled with that value's rows rather than left out of them."""
    value = record.get("parameters", {}).get(column)
    return next((x for x in labels.dropna().unique() if json.loads(x) == value), json.dumps(value))


def sweep_dirs(name: str, runs_dir=None, figures_dir=None) -> tuple[Path, Path]:
    return runs_root(runs_dir) / name, figures_root(figures_dir) / name


def unfinished(points: pd.DataFrame) -> pd.DataFrame:
    """The rows of a sweep's index whose point is not done (queued, failed, stale...)."""
    return points[points["status"] != "done"]


def _named(left: pd.DataFrame) -> str:
    return ", ".join(f"{p} ({s})" for p, s in zip(left["point"], left["status"]))


def read_sweep(
    name: str, runs_dir=None, figures_dir=None, only: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The finished points (one column per swept parameter, values as text), and the per-image
    RC and RS rows of every architecture of those points (with a `point` column); `only`: the
    names of the points to read, else every point of the index. A point whose RUN.json is of
    other definitions than this code's (`record.definitions`), or a finished one whose run folder
    is not here, is refused; so is one whose RUN.json is not the run the index lists (its tables
    key) or whose rows are not those its RUN.json records (their stamps' keys)."""
    runs, figures = sweep_dirs(name, runs_dir, figures_dir)
    index = figures / "points.csv"
    if not index.is_file():
        raise GADInputError(f"no sweep {name!r}: {index} does not exist (run python -m gadlib.sweep {name} ... first)")
    points = read_points(index)
    if only is not None:
        points = points[points["point"].isin(only)]
    if absent := points_not_here(points):  # else pooled without them, unseen
        raise GADInputError(
            f"sweep {name!r}: the run folders of its finished points {', '.join(absent)} are not on this machine "
            "(or not whole), so the effects would pool the other points only: run the sweep here with a grid "
            "holding them too (python -m gadlib.sweep or make sweep; finished stages are reused)"
        )
    if not (left := unfinished(points)).empty:  # pooled without them: said, not unseen
        notices.warn(
            f"sweep {name!r}: points not finished, left out of the effects: {_named(left)} "
            "(run the sweep again to finish them)"
        )
    points = points[points["status"] == "done"].reset_index(drop=True)
    if points.empty:
        raise GADInputError(f"sweep {name!r} has no finished point yet: see {index}")
    params = pd.DataFrame([{k: json.dumps(v) for k, v in json.loads(p).items()} for p in points["params"]])
    points = pd.concat([points[["point", "group", "key", "seconds"]], params], axis=1)
    # the architectures every point ran (an index written before the first line recorded them: those found)
    try:
        archs = json.loads(read_context(index) or "{}").get("archs")
    except ValueError:  # a first line edited by hand
        raise GADInputError(f"sweep {name!r}: the first line of {index} is not the sweep's settings") from None
    rc, rs = [], []
    again = f"run the sweep again (python -m gadlib.sweep {name} ..., or make sweep: unchanged stages are reused)"
    for row, (point, key) in enumerate(zip(points["point"], points["key"])):
        record, why = listed_record(index, point, key)
        if why is not None:
            raise GADInputError(f"sweep {name!r}: {why}: {again}")
        for column in params.columns[params.iloc[row].isna()]:  # a point of an earlier grid without it
            points.loc[row, column] = value_label(record, column, params[column])
        if not (runs / point).is_dir():
            raise GADInputError(
                f"sweep {name!r}: the run folder of point {point} is not on this machine ({runs / point}): "
                f"run the sweep here first (python -m gadlib.sweep {name} ..., or make sweep)"
            )
        if archs and not run_folder_whole(runs / point, archs):  # else its missing rows are left out, unseen
            raise GADInputError(
                f"sweep {name!r}: the run folder of point {point} is not whole ({runs / point}: a running or "
                f"killed run's, or without an architecture's rc.csv or rs.csv): {again}"
            )
        files = np.array(evaluated_files(runs / point, record, f"sweep {name!r}, point {point}", again), dtype=object)
        # the sweep's architectures only (or, for an index without them, the point's): a folder of
        # another (an earlier call's) is not this sweep's
        found = [runs / point / a for a in archs or record.get("archs") or []]
        for arch_dir in sorted(p for p in found if (p / "rc.csv").is_file()):
            # a run of the point's name made since may have rewritten its rows but not its RUN.json
            rows = {part: read_csv(arch_dir / f"{part}.csv") for part in ("rc", "rs")}
            made = record.get("keys", {}).get(arch_dir.name, {})
            if any((st or {}).get("key") != made.get(part) for part, (_, st) in rows.items()):
                raise GADInputError(
                    f"sweep {name!r}: the rows in {arch_dir} are not those the RUN.json of point {point} "
                    f"records (another run wrote them since): {again}"
                )
            for part, into in (("rc", rc), ("rs", rs)):
                images = rows[part][0]["image"].to_numpy()
                if len(images) and (images.min() < 0 or images.max() >= len(files)):
                    raise GADInputError(
                        f"sweep {name!r}: the rows in {arch_dir / part}.csv are of other images than the "
                        f"{len(files)} its point evaluates: {again}"
                    )
                into.append(rows[part][0].assign(point=point, file=files[images]))
    if not rc:
        raise GADInputError(f"sweep {name!r}: no per-image rows under {runs} (the run folders are not on this machine)")
    return points, pd.concat(rc, ignore_index=True), pd.concat(rs, ignore_index=True)


def evaluated_files(run_dir: Path, record: dict, what: str, again: str) -> list[str]:
    """Which picture each of a point's evaluation images is, in the order of its rows' `image`
    index (stage 03's `eval_images` on the data its run stored): its file (`_picture`), or for
    data without files (synthetic, drawn from the seed) its seed and place in the test split."""
    data, stamp = load(run_dir / "data.pt")
    if data is None:
        raise GADInputError(f"{what}: its stored data ({run_dir / 'data.pt'}) is missing or unreadable: {again}")
    params = record.get("parameters") or {}
    if "n_eval" not in params or "seed" not in params:
        raise GADInputError(f"{what}: its RUN.json gives no n_eval or seed: {again}")
    for field, stored in stamp["settings"].items():  # the data of the run the record describes
        if field in DATA_FIELDS and normalise(params.get(field, LATER_DEFAULTS.get(field))) != stored:
            shown = int(stored) if isinstance(stored, float) and stored.is_integer() else stored
            raise GADInputError(
                f"{what}: its stored data is of {field} {shown}, its RUN.json of {params.get(field)}: {again}"
            )
    seed = int(params["seed"])
    idx = eval_indices(data.test, int(params["n_eval"]), seed).tolist()
    if data.test.paths is None:
        return [f"synthetic seed {seed}, test image {i}" for i in idx]
    return [_picture(data.test.paths[i], params.get("data_dir")) for i in idx]


def _picture(path: str, data_dir: str | None) -> str:
    """A file's name as the pack's folder name and its place in it ("cub/warbler/1.jpg"), so that
    points whose pack lay elsewhere (another machine, a sweep's worker) still name one picture
    once; the path itself where it is not under data_dir."""
    if data_dir:
        root = Path(data_dir).expanduser()
        if Path(path).is_relative_to(root):
            return (Path(root.name) / Path(path).relative_to(root)).as_posix()
    return path


def _pictures(rows: pd.DataFrame):
    """The bootstrap cluster of each row: its picture, named by its position.

    A swept seed draws another test split, so the points pooled for one value can evaluate one
    picture at position 3 and at 17; its values at both are of one image and must stay in one
    cluster, or the interval comes out too narrow. Each picture (read_sweep's `file` column) is
    therefore named by the smallest position at which the pooled rows have it, and pictures that
    share that position by their file too. Where the pooled points evaluate the same pictures at
    the same positions (one point, or one seed), the names are the positions themselves, as
    before pictures were named (rows built without a `file` column: the same). A picture's rows
    under its two targets are one cluster too: both maps explain one image, and their values move
    together (kept apart, the intervals came out a median 1.1 to 1.3 times too narrow)."""
    label = rows["image"].astype(str)
    if "file" in rows and rows["file"].notna().any():
        named = rows["file"].notna()
        files = rows.loc[named, "file"]
        position = rows.loc[named, "image"].groupby(files).min()  # per picture
        shared = position.map(position.value_counts()) > 1
        names = position.astype(str).where(~shared, position.astype(str) + ":" + position.index.astype(str))
        label = label.where(~named, files.map(names))
    return label.to_numpy()


def swept(points: pd.DataFrame) -> list[str]:
    return [c for c in points.columns if c not in ("point", "group", "key", "seconds")]


def effects(
    points: pd.DataFrame,
    rc: pd.DataFrame,
    rs: pd.DataFrame,
    hull_rule: str = "top_q",
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per swept parameter, value, architecture, method and measure: mean, 95% bootstrap
    interval and number of clusters (pictures, each counted once whatever its targets and the
    points that evaluate it: `_pictures`), pooled over every point with that value."""
    if not (rc["hull_rule"] == hull_rule).any():
        found = ", ".join(sorted(rc["hull_rule"].unique()))
        raise GADInputError(f"the sweep's points computed no hulls by rule {hull_rule!r}: choose one of {found}")
    rc = rc[rc["hull_rule"] == hull_rule].reset_index(drop=True)  # unique labels: hull_areas keeps them
    keys = ["point", "arch", "method", "target", "image"]
    # pivot, not pivot_table: the rows as they are (points of other images or n_eval included),
    # without the empty combinations pivot_table(dropna=False) adds, and a repeated row refused
    wide = rs[rs["hull_rule"] == hull_rule].pivot(index=keys, columns="mask", values="rs")
    areas = rc[[*keys, "area_gad", "area_orig", "rc_base", "rc_base_hull", *(["file"] if "file" in rc else [])]]
    wide = wide.reset_index().merge(areas, on=keys, how="outer", validate="one_to_one", indicator=True)
    if (wide.pop("_merge") != "both").any():
        raise ValueError("sweep effects: a point's RS and RC rows are of different images")
    wide = wide.assign(change=logit_change_gain(wide), change_hull=logit_change_gain(wide, "base_hull"))
    rows = []
    for param in swept(points):
        for value, members in points.groupby(param, sort=False):
            chosen = set(members["point"])
            r, w = rc[rc["point"].isin(chosen)], wide[wide["point"].isin(chosen)]
            for (arch, method), g in r.groupby(["arch", "method"], sort=False):
                gw = w[(w["arch"] == arch) & (w["method"] == method)]
                defined = g.dropna(subset=["rc"])
                hulls = hull_areas(g)
                # each named once, not per measure
                hull_pictures, wide_pictures = _pictures(g.loc[hulls.index]), _pictures(gw)
                samples = {  # (values, the picture each value belongs to)
                    "share RC<1": ((defined["rc"] < 1).to_numpy(float), _pictures(defined)),
                    "RS GAD - Sup": ((gw["gad"] - gw["sup"]).to_numpy(), wide_pictures),
                    "RS GAD - Base": ((gw["gad"] - gw["base"]).to_numpy(), wide_pictures),
                    "change GAD - Base": (gw["change"].to_numpy(), wide_pictures),
                    "RS GAD - Base(hull)": ((gw["gad"] - gw["base_hull"]).to_numpy(), wide_pictures),
                    "change GAD - Base(hull)": (gw["change_hull"].to_numpy(), wide_pictures),
                    **{m: (hulls[column].to_numpy(), hull_pictures) for m, column in HULL_MEASURES.items()},
                }
                for measure, (values, pictures) in samples.items():
                    # a picture's rows at every point with this value are one cluster (_pictures): resampled whole
                    b = cluster_bootstrap(values, pictures, resamples, seed)
                    rows.append(
                        {
                            "parameter": param,
                            "value": value,
                            "arch": arch,
                            "method": method_label(method),
                            "measure": measure,
                            "mean": b["mean"],
                            "low": b["low"],
                            "high": b["high"],
                            "n": b["n"],
                        }
                    )
    return pd.DataFrame(rows)


# What a bootstrap cluster is, in the stamp of every effects file: tables made before it was
# recorded (image-target pairs, each of a picture's targets one cluster) have no stamp.
CLUSTERS = "pictures"


def effects_stamp(points: pd.DataFrame, hull_rule: str) -> dict:
    """The stamp of a sweep's effects: the pooled points with the tables keys their RUN.json
    record (points.csv's `key`), the hull rule and what a cluster is; its key ends the .md."""
    made = {"stage": "effects", "clusters": CLUSTERS, "hull_rule": hull_rule}
    made["points"] = dict(zip(points["point"], points["key"]))
    return {**made, "key": _hash(made)}


def effects_not_current(figures: Path, hull_rule: str) -> str | None:
    """Why figures/<sweep>/effects_<rule>.{csv,md} are not the effects of the points the sweep's
    index lists as finished (with the keys it lists), nor of this code's clusters; None where they
    are, and for effects made before they were stamped (those keep the clusters of their time)."""
    csv, md = (effects_paths(figures, hull_rule)[kind] for kind in ("csv", "md"))
    _, st = read_csv(csv) if csv.is_file() else (None, None)
    found = read_key(md.read_text()) if md.is_file() else None
    if st is None:
        return f"{md.name} has a key but {csv.name} no stamp" if found else None
    if found != st["key"]:
        return f"{md.name} is not of the effects in {csv.name}"
    if st.get("clusters") != CLUSTERS:
        return f"its intervals resample {st.get('clusters')}, this code's {CLUSTERS}"
    index = figures / "points.csv"
    listed = read_points(index) if index.is_file() else pd.DataFrame(columns=["point", "key", "status"])
    done = listed[listed["status"].isin(["done", NOT_HERE])]  # finished, here or on the machine that ran them
    if st["points"] != dict(zip(done["point"], done["key"])):
        return f"they pool other points than those {index} lists as finished, or of other keys"
    return None


def remove_stale_effects(figures: Path) -> list[str]:
    """Remove each hull rule's effects (csv, md, figure) that `effects_not_current` finds stale, as
    a sweep call that changed its index but could not run notebook 08 leaves them; one line each."""
    said = []
    for csv in sorted(figures.glob(effects_paths(Path(), "*")["csv"].name)):
        rule = csv.stem.removeprefix("effects_")
        if why := effects_not_current(figures, rule):
            gone = [path for path in effects_paths(figures, rule).values() if path.exists()]
            for path in gone:
                path.unlink()
            said.append(f"removed {', '.join(p.name for p in gone)}: {why} (the sweep's notebook 08 makes them again)")
    return said


def write(table: pd.DataFrame, points: pd.DataFrame, name: str, hull_rule: str, figures_dir=None) -> tuple[Path, Path]:
    """figures/<sweep>/effects_<rule>.csv and .md (atomic writes), stamped with the points pooled
    (`effects_stamp`); the .md ends with `interval_counts`."""
    from .runfiles import write_csv, write_text
    from .tables import to_markdown

    _, figures = sweep_dirs(name, None, figures_dir)
    csv, md = (effects_paths(figures, hull_rule)[kind] for kind in ("csv", "md"))
    st = effects_stamp(points, hull_rule)
    wide = table.assign(estimate=table.apply(lambda r: f"{r['mean']:.3g} [{r['low']:.3g}, {r['high']:.3g}]", axis=1))
    keys = ["parameter", "value", "arch", "method"]
    wide = wide.pivot_table(index=keys, columns="measure", values="estimate", aggfunc="first", sort=False)
    counts = interval_counts(table).rename_axis(f"measure ({len(wide)} cells each)")
    counts = counts.rename(columns=COUNT_NAMES)
    refs = ", ".join(f"{m} {REFERENCES[m]:g}" for m in MEASURES)
    index = figures / "points.csv"
    left = unfinished(read_points(index)) if index.is_file() else pd.DataFrame()
    text = (
        to_markdown(wide[list(MEASURES)], floatfmt=".3g")
        + "\n\nMean [95% bootstrap interval] over the pooled points' rows, resampling whole pictures (a picture's "
        + "rows under both targets and at every point one cluster; n in the CSV counts them)."
        + f"\n\nEach interval against its reference ({refs}):\n\n"
        + to_markdown(counts)
        + "\n"
        + (f"\nPooled over the finished points only; not finished, left out: {_named(left)}.\n" if len(left) else "")
    )
    write_csv(table, csv, st)
    write_text(text, md, st)
    return csv, md
