"""Project hygiene: environment files agree, notebooks match their generator and stay thin."""
import json
import re
import sys
import tomllib

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))


def _names(reqs):
    return {re.split(r"[=<>!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    text = (ROOT / "environment.yml").read_text()
    pip_block = text.split("- pip:", 1)[1].splitlines()
    pip_lines = [line.strip()[2:] for line in pip_block if line.strip().startswith("- ") and "-e" not in line]
    assert _names(deps) == _names(pip_lines)


def test_notebooks_match_generator_and_define_nothing():
    import build_notebooks

    for name, cells in build_notebooks.NOTEBOOKS.items():
        committed = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        expected = build_notebooks.build(name, cells)
        assert ["".join(c["source"]) for c in committed["cells"]] == [c.source for c in expected.cells], name
        tags = [c.get("metadata", {}).get("tags", []) for c in committed["cells"]]
        assert sum("parameters" in t for t in tags) == 1, name
        for c in committed["cells"]:
            if c["cell_type"] == "code":
                src = "".join(c["source"])
                assert not re.search(r"^\s*(def|class)\s", src, re.M), name
                assert not c.get("outputs"), f"{name} is committed with outputs"


def test_readme_results_are_what_the_run_files_say():
    import readme_tables

    readme = (ROOT / "README.md").read_text()
    assert len(readme_tables.MARKER.findall(readme)) >= 5
    assert readme_tables.render(readme) == readme, "run `make readme-tables`"


def test_every_run_with_tables_has_its_run_record():
    for folder in (ROOT / "figures").iterdir():
        if list(folder.glob("table1_*.csv")):
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
    lab = subprocess.Popen(["make", "lab", f"LAB_ARGS=--no-browser --port={port}"], cwd=ROOT, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
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
        lab.wait(timeout=30)
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
