"""Project hygiene: environment files agree, notebooks are paired with their .py files and stay thin."""

import ast
import json
import re
import sys
import tomllib
from pathlib import Path

from conftest import ROOT


def test_environment_yml_installs_the_package_with_its_dev_extra_only():
    """One list of packages: pyproject.toml. environment.yml adds only Python and pip."""
    text = (ROOT / "environment.yml").read_text()
    entries = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]
    assert entries == ["conda-forge", "python=3.11", "pip", "pip:", "-e .[dev]"], entries
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = {re.split(r"[=<>!~ ]", r, maxsplit=1)[0] for r in project["optional-dependencies"]["dev"]}
    runtime = {re.split(r"[=<>!~ ]", r, maxsplit=1)[0] for r in project["dependencies"]}
    assert {"pytest", "nbval", "ruff"} <= dev and not ({"pytest", "nbval", "ruff"} & runtime)


NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
# 00_quickstart and 08_sweep are not stages of a run: they have their own parameters
PIPELINE = [p for p in NOTEBOOKS if p.name[:2] not in ("00", "08")]


def _jupytext(*args, cwd=ROOT):
    import subprocess

    subprocess.run([sys.executable, "-m", "jupytext", "--quiet", *map(str, args)], cwd=cwd, check=True)


def test_notebooks_are_paired_stripped_and_thin():
    """Each notebook has its percent-format .py twin with the same cells; no outputs are
    committed; no cell defines a function or a class; in the run's notebooks (not the
    quickstart) the parameters cell is the same everywhere and setup is one call."""
    import jupytext

    assert len(NOTEBOOKS) == 9 and len(PIPELINE) == 7
    parameters = set()
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        twin = jupytext.read(path.with_suffix(".py"), fmt="py:percent")
        assert [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]] == [
            (c.cell_type, c.source) for c in twin.cells
        ], f"{path.name} and its .py differ: run `make notebooks`"
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        if path in PIPELINE:
            assert len(tagged) == 1, path.name
            parameters.add("".join(tagged[0]["source"]))
            assert sum("cfg, data = stages.setup(globals())" in src for src in code) == 1, path.name
        for c in nb["cells"]:
            if c["cell_type"] == "code":
                tree = ast.parse("".join(c["source"]))
                defined = [
                    type(n).__name__
                    for n in ast.walk(tree)
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
                ]
                assert not defined, f"{path.name} defines {defined}: put it in gadlib"
                assert not c.get("outputs") and c.get("execution_count") is None, f"{path.name} has outputs"
    assert len(parameters) == 1, "the parameters cells differ between notebooks"


def test_runner_reads_the_parameters_cell_and_each_name_is_a_setting():
    import dataclasses

    import papermill as pm

    from gadlib import RunConfig
    from gadlib.reproduce import notebook_parameters

    names = notebook_parameters()
    assert names == set(pm.inspect_notebook(str(ROOT / "notebooks" / "01_data.ipynb")))  # as Papermill reads it
    assert {"profile", "dataset", "arch", "alphas", "extra"} <= names
    assert names - {"extra"} <= {f.name for f in dataclasses.fields(RunConfig)}


def test_an_edit_in_either_form_reaches_the_other(tmp_path):
    """What JupyterLab with jupytext does on save, scripted: an edit of the .py reaches the
    notebook on sync, and an edit of the notebook reaches the .py."""
    import os
    import shutil

    import nbformat

    shutil.copy(ROOT / "notebooks" / "jupytext.toml", tmp_path)
    nb_path = tmp_path / "04_complexity.ipynb"
    shutil.copy(ROOT / "notebooks" / nb_path.name, nb_path)
    shutil.copy(ROOT / "notebooks" / "04_complexity.py", tmp_path)
    py_path = nb_path.with_suffix(".py")
    text = py_path.read_text().replace(
        "rc, gt = comp.rc, comp.ground_truth", "rc, gt = comp.rc, comp.ground_truth\nprint('edited in the .py')"
    )
    py_path.write_text(text)
    _jupytext("--sync", nb_path.name, cwd=tmp_path)
    nb = nbformat.read(nb_path, 4)
    assert any("print('edited in the .py')" in c.source for c in nb.cells)
    assert "parameters" in nb.cells[1].metadata.get("tags", [])  # tags survive the round trip
    nb.cells[-1].source += "\nassert True  # edited in the notebook"
    nbformat.write(nb, nb_path)
    later = py_path.stat().st_mtime + 2  # saved after the .py, whatever the clock's resolution
    os.utime(nb_path, (later, later))
    _jupytext("--sync", nb_path.name, cwd=tmp_path)
    assert "assert True  # edited in the notebook" in py_path.read_text()
    assert "print('edited in the .py')" in py_path.read_text()


def test_readme_results_are_what_the_run_files_say():
    import readme_tables

    documents = readme_tables.documents()
    assert {p.name for p in documents} >= {"README.md", "reproducibility.md", "changes.md"}
    assert len(readme_tables.MARKER.findall((ROOT / "README.md").read_text())) >= 5
    for path in documents:
        text = path.read_text()
        assert readme_tables.MARKER.findall(text), f"{path} has no table from a run: why is it in docs/?"
        assert readme_tables.render(text) == text, f"{path}: run `make readme-tables`"


def test_direction_counts_are_what_the_direction_tables_say(capsys):
    """figures/direction_summary.md (the counts the README's prose cites) is made from the
    committed direction tables, and is remade when they change."""
    import direction_summary

    runs = re.search(r"^CONTROL_RUNS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    direction_summary.main(*(str(ROOT / r) for r in runs))
    committed = (ROOT / "figures/direction_summary.md").read_text()
    assert capsys.readouterr().out == committed, "run `make direction-summary`"


def test_direction_counts_name_the_methods_whose_classes_disagree():
    import direction_summary
    import pandas as pd

    verdicts = pd.Series(
        ["holds", "fails", "undecided (interval contains 0)", "class 1 fails, class 2 undecided", "no difference"],
        index=["S", "D", "GxI", "GB", "IG"],
    )
    assert direction_summary.count(verdicts) == "1 / 1 / 1 (1 ties); split: GB (c1 fails, c2 undecided)"


def test_summaries_label_each_runs_own_hull_rules(tmp_path):
    """The summaries' hull labels come from the run's record: its rules, its hull_q and hull_tau."""
    import json

    import direction_summary

    (tmp_path / "RUN.json").write_text(
        json.dumps({"parameters": {"hull_rules": ["top_q"], "hull_q": 0.3, "hull_tau": 0.1}})
    )
    assert direction_summary.rules_of(tmp_path) == {"top_q": "top 30%"}
    committed = direction_summary.rules_of(ROOT / "figures/synthetic-default")
    assert committed == {"top_q": "top 50%", "frac_max": "10% of max"}


def test_every_run_with_tables_has_its_run_record():
    """Every committed run's tables, a sweep point's included, come with the record of a clean commit."""
    folders = {table.parent for table in (ROOT / "figures").glob("**/table1_*.csv")}
    assert len(folders) >= 60  # the runs and sweep points committed today: 66
    for folder in folders:
        record = json.loads((folder / "RUN.json").read_text())
        assert record["commit"] and record["dirty"] is False, folder


def test_readme_tool_refuses_a_table_left_by_another_run(tmp_path):
    import pytest
    import readme_tables

    (tmp_path / "RUN.json").write_text(json.dumps({"tables_key": "abc"}))
    (tmp_path / "table1_top_q.md").write_text("| a |\n|---|\n| 1 |\n\n<!-- gad key abc -->\n")
    readme_tables.check_made_by_run(tmp_path / "table1_top_q.md")
    (tmp_path / "table1_frac_max.md").write_text("| a |\n|---|\n| 2 |\n\n<!-- gad key old -->\n")
    with pytest.raises(SystemExit, match="was not made from the rows"):
        readme_tables.check_made_by_run(tmp_path / "table1_frac_max.md")


def test_make_lab_starts_and_prints_its_url_as_any_user():
    """JupyterLab refuses root unless told (containers run as root); `make lab` tells it only then."""
    import os
    import signal
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lab = subprocess.Popen(
        # -o notebooks: not their sync, which rewrites notebooks/*.ipynb in place while other
        # tests' chains read them (make test synced them before any test)
        ["make", "-o", "notebooks", "lab", f"LAB_ARGS=--no-browser --port={port}"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    import selectors

    seen, deadline = [], time.time() + 120
    waiting = selectors.DefaultSelector()
    waiting.register(lab.stdout, selectors.EVENT_READ)
    try:
        while time.time() < deadline:
            if not waiting.select(timeout=deadline - time.time()):
                break  # nothing printed before the deadline
            line = lab.stdout.readline()
            if not line:
                break
            seen.append(line)
            if f":{port}/lab?token=" in line:
                break
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # Twice (once in CI) the server took SIGTERM and never finished its shutdown, and make
            # waits for it; what this test checks is the start, so the group is killed.
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait(timeout=15)
    text = "".join(seen)
    assert f"http://localhost:{port}/lab?token=" in text or f"http://127.0.0.1:{port}/lab?token=" in text, text
    assert ("--allow-root" in text) == (os.geteuid() == 0), text


def test_make_help_lists_every_target_that_users_run():
    import re
    import subprocess

    text = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    phony = re.search(r"^\.PHONY: (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    listed = {line.split()[1] for line in text.splitlines() if line.startswith("make ")}
    assert set(phony) <= listed, set(phony) - listed


def test_setup_refuses_a_setting_given_twice():
    import pytest

    from gadlib import GADInputError, stages

    with pytest.raises(GADInputError, match="alphas given both as a parameter and in extra"):
        stages.setup({"profile": "smoke", "alphas": [2.0], "extra": {"alphas": [4.0]}, "os": object()})


def test_readme_shows_the_quickstart_notebooks_code():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## GAD on your own model") :]
    block = section[section.index("```python\n") + 10 : section.index("\n```\n")]
    code = (ROOT / "notebooks" / "00_quickstart.py").read_text().splitlines()
    lines = [line for line in code if line.strip() and not line.startswith("#")]
    assert [line for line in block.splitlines() if line.strip()] == lines, "copy 00_quickstart's code to the README"


def test_pips_package_sources_become_uvs_options():
    """`make` installs with uv, which reads no pip.conf: tools/pip_sources.py hands it pip's
    sources as `pip install` reads them: an environment variable replaces the files' value,
    [install] comes before [global], other sections are not read, values may span lines."""
    from pip_sources import sources

    listing = """download.index-url='https://download-only.example/simple'
:env:.find-links='/opt/wheels'
:env:.default-timeout='180'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='\\nfile:///opt/pypi/simple\\nfile:///opt/pypi-more/simple'
global.find-links='/srv/other-wheels'
global.index-url='https://pypi.org/simple'
install.index-url='https://mirror.example/simple https://second.example/simple'
"""
    assert sources(listing) == [
        *("--index-url", "https://mirror.example/simple"),
        *("--extra-index-url", "file:///opt/pypi/simple"),
        *("--extra-index-url", "file:///opt/pypi-more/simple"),
        *("--find-links", "/opt/wheels"),
        *("--constraint", "/etc/xdg/pip/constraints.txt"),
    ]
    assert sources(":env:.no-index='true'\n") == ["--no-index"]
    assert sources("") == [] and sources(":env:.default-timeout='180'\n") == []


def test_the_device_kit_brings_every_package_a_gpu_run_imports_that_the_image_lacks():
    """tools/device_kit.py: every third-party package that the notebooks, the benchmarks and
    gadlib import (lazily too) is in the GPU machine's image or in the kit, whose notebook stack
    Papermill needs besides; nothing the image holds travels (it would shadow the image's torch)."""
    import ast
    import importlib.metadata as md

    from device_kit import DEVICE_HAS, needed
    from packaging.utils import canonicalize_name

    kit = needed()
    assert {"captum", "papermill", "ipykernel", "nbclient", "jupyter-client"} <= set(kit)
    assert {"torch", "torchvision", "numpy"} <= DEVICE_HAS and not set(kit) & DEVICE_HAS
    off_device = {"sweep"}  # parallel sweeps on Dask, not part of the GPU checks
    files = [*ROOT.glob("notebooks/0*.py"), *ROOT.glob("benchmarks/*.py")]
    files += [p for p in ROOT.glob("gadlib/*.py") if p.stem not in off_device]
    files.append(ROOT / "tools" / "profile_stages.py")  # device_run.sh runs it there (controls-profile)
    owners = md.packages_distributions()
    missing = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names}:
                if top in sys.stdlib_module_names or top in ("gadlib", "captum_reference"):
                    continue
                if not {canonicalize_name(d) for d in owners.get(top, [])} & (set(kit) | DEVICE_HAS):
                    missing.add(f"{path.name}: {top}")
    assert not missing


def github_anchor(heading: str) -> str:
    # GitHub's rule: lower case, drop what is not a word character, space or hyphen, spaces to hyphens
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


DOCUMENTS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def headings_anchors(doc: Path) -> set[str]:
    text = re.sub(r"^ *```.*?^ *```", "", doc.read_text(), flags=re.M | re.S)  # a "# comment" in code is no heading
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        anchor = base = github_anchor(heading)
        n = 0
        while anchor in anchors:  # GitHub numbers a repeated heading's anchor: -1, -2, ...
            n += 1
            anchor = f"{base}-{n}"
        anchors.add(anchor)
    return anchors


def test_every_link_within_a_document_names_one_of_its_headings():
    """A link such as [question 7](#7-does-...) leads nowhere once its heading is reworded."""
    checked = 0
    for doc in DOCUMENTS:
        text = re.sub(r"^ *```.*?^ *```", "", doc.read_text(), flags=re.M | re.S)
        links = re.findall(r"\]\(#([^)]+)\)", text)
        assert not (missing := sorted(set(links) - headings_anchors(doc))), f"{doc.name} links to no heading: {missing}"
        checked += len(links)
    assert checked >= 15  # the README's contents line alone has 13


def test_every_link_to_another_file_finds_it_and_its_heading():
    """A link or image from one document to a file of the repository (docs/sweeps.md, a figure)
    leads nowhere once that file moves, or its heading is reworded; one git does not keep (under
    runs/, or not committed) leads nowhere on a fresh clone."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    kept = {(ROOT / line).resolve() for line in tracked.splitlines()}
    kept |= {folder for path in kept for folder in path.parents}
    checked = 0
    for doc in DOCUMENTS:
        text = re.sub(r"^ *```.*?^ *```", "", doc.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)#\s]+)(?:#([^)]+))?\)", text):
            path, anchor = target
            if re.match(r"[a-z]+:", path):  # https:, mailto:
                continue
            linked = (doc.parent / path).resolve()
            assert linked in kept, f"{doc.relative_to(ROOT)} links to {path}, which git does not keep"
            if anchor and linked.suffix == ".md":
                where = f"{doc.relative_to(ROOT)} links to {path}#{anchor}"
                assert anchor in headings_anchors(linked), f"{where}: no such heading"
            checked += 1
    assert checked >= 20


def test_every_gadlib_name_the_scripts_import_exists():
    """The tools, benchmarks and notebooks import gadlib's names inside functions too, where an
    import error waits until the call: each name must still be there (tools/profile_stages.py
    once imported a parser a refactor had removed, and failed even on --help)."""
    import importlib
    import importlib.util

    scripts = [*ROOT.glob("tools/*.py"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("notebooks/0*.py")]
    checked = 0
    for path in scripts:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("gadlib"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    submodule = hasattr(module, "__path__") and importlib.util.find_spec(f"{node.module}.{alias.name}")
                    has = hasattr(module, alias.name) or submodule
                    assert has, f"{path.relative_to(ROOT)}: from {node.module} import {alias.name}"
                    checked += 1
    assert checked > 100
