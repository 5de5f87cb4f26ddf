"""Print uv's options for the package sources pip is configured with (pip.conf, PIP_* variables),
one argument per line: index URLs, find-links, a constraint file, no-index. `make` installs
with uv from where pip would install (a local mirror, say). Nothing when pip has no such setting
or cannot be asked. Run by the Makefile with .venv's Python: standard library only."""

import ast
import subprocess
import sys

OPTIONS = {  # pip's setting -> uv's option; pip's values are whitespace-separated lists
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
# The sections `pip install` reads, the first that sets a value winning (as in pip, an
# environment variable replaces the files' value rather than adding to it).
SECTIONS = (":env:", "install", "global")


def sources(listing: str) -> list[str]:
    """uv options from `pip config list` lines such as global.find-links='/opt/wheels'."""
    values: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        section, _, name = key.rpartition(".")
        if sep and section in SECTIONS and (name in OPTIONS or name == "no-index"):
            try:
                values[section, name] = str(ast.literal_eval(raw))  # pip prints each value with repr()
            except (ValueError, SyntaxError):
                values[section, name] = raw
    args = []
    for name in (*OPTIONS, "no-index"):
        value = next((values[s, name] for s in SECTIONS if (s, name) in values), None)
        if value is None:
            continue
        if name == "no-index":
            args += ["--no-index"] if value.strip().lower() in ("1", "true", "yes", "on") else []
            continue
        items = list(dict.fromkeys(value.split()))
        for item in items[:1] if name == "index-url" else items:  # one main index
            args += [OPTIONS[name], item]
    return args


if __name__ == "__main__":
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    print("\n".join(sources(listing)))
