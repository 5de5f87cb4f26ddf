"""Print uv's options for the package sources pip is configured with (pip.conf, PIP_* variables):
index URLs, find-links and a constraint file, so that `make` installs with uv from where pip would
install (a local mirror, say). Nothing when pip has no such setting or cannot be asked.
Run by the Makefile with the system Python, before .venv exists: standard library only."""

import shlex
import subprocess
import sys

OPTIONS = {  # pip's setting -> uv's option; the values are space-separated lists in pip
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}


def sources(listing: str) -> list[str]:
    """uv options from `pip config list` lines such as global.find-links='/opt/wheels'."""
    found: dict[str, list[str]] = {}
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if sep and name in OPTIONS:
            for item in shlex.split(value)[0].split() if value.strip() else []:
                if item not in found.setdefault(name, []):
                    found[name].append(item)
    if found.get("index-url"):  # one main index; pip lists its environment variables first, and they win
        found["index-url"] = found["index-url"][:1]
    return [arg for name, items in found.items() for item in items for arg in (OPTIONS[name], item)]


if __name__ == "__main__":
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    print(shlex.join(sources(listing)))
