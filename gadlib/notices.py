"""What a notebook has to tell the person who started the run: warnings (GADWarning) and
decisions taken for them ("notes", e.g. the precision of each method). Inside a notebook they
show under the cell; `python -m gadlib.reproduce` reads them back from each executed notebook
and repeats them on the console, once per run."""

from __future__ import annotations

import re
import sys
import warnings

from .errors import GADWarning

NOTE_PREFIX = "[gad] "
_WARNING = re.compile(r"GADWarning: (.*)")


def warn(message: str) -> None:
    """A one-line warning (a Python warning of category GADWarning), shown at the first caller
    outside gadlib: the user's line or notebook cell, not gadlib's own."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn's caller
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "gadlib":
        level, frame = level + 1, frame.f_back
    warnings.warn(message, GADWarning, stacklevel=level)


def note(message: str) -> None:
    """A one-line decision the user should see, printed under the cell."""
    print(NOTE_PREFIX + message, flush=True)


def from_notebook(nb) -> list[str]:
    """'warning: ...' and 'note: ...' lines in the outputs of an executed notebook, in order,
    without repeats."""
    lines = []
    for cell in nb.cells:
        streams: dict[str, str] = {}
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":  # a message may arrive in several pieces
                streams[out["name"]] = streams.get(out["name"], "") + out.get("text", "")
        for text in streams.values():
            for line in re.split(r"[\r\n]", text):
                if found := _WARNING.search(line):
                    lines.append("warning: " + found.group(1).strip())
                elif line.startswith(NOTE_PREFIX):
                    lines.append("note: " + line[len(NOTE_PREFIX) :].strip())
    return list(dict.fromkeys(lines))
