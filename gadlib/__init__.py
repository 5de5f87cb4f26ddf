"""GAD, Gradient Artificial Distancing: less noisy gradient attribution maps.

`gadlib.GAD` is GAD on any classifier, shaped like a captum attribution (`gadlib.gad`).

Notebooks 01-05 call `gadlib.stages`, notebook 06 `gadlib.report` (tables and figures); the
pieces are in small modules: `config` (profiles and parameters), `runfiles` (run files, stamps),
`runfolder` (atomic writes, the run-folder lock), `layouts` (image folders), `data` and
`synthetic` (datasets), `models` and `training` (classifier and supports), `attributions` (the
five methods), `consensus` and `hulls` (GAD and its regions), `metrics` (RC, RS), `tables`
(every table layout, and the paper's tables, transcribed in `paper`, beside ours), `figures`
(plots); notebook 07's controls in `controls`, with `stats`, `faithfulness` and `sanity`;
sweeps on Dask in `sweep`, and what they show (notebook 08) in `sweep_effects`.
"""

from .config import METHODS, RunConfig
from .errors import GADInputError

__all__ = ["GAD", "METHODS", "GADInputError", "RunConfig"]


def __getattr__(name: str):
    # GAD imports torch models and captum: loaded on first use, so `python -m gadlib.reproduce`
    # still answers bad input within a second or two
    if name == "GAD":
        from .gad import GAD

        return GAD
    raise AttributeError(f"module 'gadlib' has no attribute {name!r}")


__version__ = "0.1.0"
