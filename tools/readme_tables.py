"""Rewrite the result sections of the README and docs/*.md from the files that runs wrote, so
that no table in them is typed in by hand. Usage: python tools/readme_tables.py [--check] [FILE ...]
(no FILE: README.md and every docs/*.md).

Markers in those files (the lines between a marker and its end are replaced):
    <!-- table figures/<run>/<name>.md -->   ...   <!-- end table -->
    <!-- table figures/<run>/<name>.md#2 --> ...   <!-- end table -->   (the file's 2nd table)
    <!-- run figures/<run> -->               ...   <!-- end run -->     (one line from RUN.json)
--check exits 1, changing nothing, if any of them is not what the run files give.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from run_tables import keys

from gadlib.config import METHOD_SHORT
from gadlib.runfiles import read_key, strip_key
from gadlib.sweep_effects import effects_not_current

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- (table|run) (\S+) -->\n(.*?)^<!-- end \1 -->$", re.M | re.S)


def _tables(text: str) -> list[str]:
    """The Markdown tables of a file, in order (blocks of lines starting with '|')."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def check_made_by_run(path: Path) -> None:
    """A table in a run folder must carry the key of the tables that folder's RUN.json records,
    and a sweep's effects must be of the points its index lists as done (`effects_not_current`):
    a file left by an earlier run, or made from other rows, stops the rewrite."""
    if path.name.startswith("effects_") and (path.parent / "points.csv").is_file():
        if why := effects_not_current(path.parent, path.stem.removeprefix("effects_")):
            sys.exit(f"error: {path}: {why}: run notebook 08 on the sweep (python -m gadlib.sweep, or make sweep)")
        return
    record = path.parent / "RUN.json"
    if not record.is_file():
        return
    if read_key(path.read_text()) not in keys(json.loads(record.read_text())):
        sys.exit(
            f"error: {path} was not made from the rows of the run in {record}: "
            "rerun notebook 06 (or the make target that writes it)"
        )


def table(ref: str) -> str:
    path, _, index = ref.partition("#")
    check_made_by_run(ROOT / path)
    text = strip_key((ROOT / path).read_text())
    return _tables(text)[int(index) - 1] if index else text


def run_line(folder: str) -> str:
    rec = json.loads((ROOT / folder / "RUN.json").read_text())
    v = rec["versions"]
    precision = []
    for arch, plan in rec["precision"].items():
        bf16 = [METHOD_SHORT[m] for m, p in plan.items() if p == "bf16"]
        precision.append(f"{arch} bf16 for {', '.join(bf16)}" if bf16 else f"{arch} fp32 throughout")
    seconds = f"{rec['total_seconds']:.0f} s in the notebooks" if "total_seconds" in rec else "time not recorded"
    if back := rec.get("read_back"):  # seconds that read results back are not the time to make them
        models = sum("/models/" in p for p in back)
        seconds += f" ({len(back)} result files made before the run and read back, {models} of them trained models)"
    return (
        f"Run record (`{folder}/RUN.json`): commit `{(rec['commit'] or 'unknown')[:7]}`"
        f"{' with uncommitted changes' if rec['dirty'] else ''}, python {v['python']}, torch {v['torch']}, "
        f"captum {v['captum']}, {rec['device']}, {rec['threads']} threads, {seconds}; precision: "
        f"{'; '.join(precision)}."
    )


def render(readme: str) -> str:
    def replace(m: re.Match) -> str:
        kind, ref = m.group(1), m.group(2)
        body = table(ref) if kind == "table" else run_line(ref)
        return f"<!-- {kind} {ref} -->\n{body}\n<!-- end {kind} -->"

    return MARKER.sub(replace, readme)


def documents() -> list[Path]:
    """The files whose tables come from run files: the README and the longer records in docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"] or documents()
    old = {path: path.read_text() for path in paths}
    rendered = {path: render(text) for path, text in old.items()}  # every file checked before any is written
    stale = [path for path in paths if rendered[path] != old[path]]
    if check:
        for path in stale:
            print(f"{path} is out of date with the run files: run `make readme-tables`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(rendered[path])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
