"""The paper's Table 1 and Table 2, to put our results beside them.

Our copy of the paper (../shared/paper/gad-paper.md) has its row labels shifted; we read its
16 rows as four blocks in the order Cat x Dog VGG16, Cat x Dog ResNet18, Birds VGG16, Birds
ResNet18, each with rows Orig.1, GAD 1, Orig.2, GAD 2 (Table 1) or Sup.1, GAD 1, Sup.2, GAD 2
(Table 2). Columns: S, D, GxI, GB, IG. Table 1 counts images out of 512; Table 2 is mean RS x 100.
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ["S", "D", "GxI", "GB", "IG"]
BLOCKS = [("catsdogs", "vgg16"), ("catsdogs", "resnet18"), ("birds", "vgg16"), ("birds", "resnet18")]

TABLE1 = [
    [[357, 0, 15, 4, 17], [155, 512, 490, 427, 480], [159, 0, 2, 3, 0], [348, 512, 494, 428, 486]],
    [[122, 0, 2, 10, 7], [390, 512, 492, 453, 497], [130, 0, 3, 5, 2], [380, 512, 490, 460, 488]],
    [[270, 0, 9, 0, 1], [240, 511, 488, 450, 500], [301, 0, 10, 0, 0], [210, 510, 494, 451, 504]],
    [[153, 0, 1, 0, 0], [358, 512, 504, 472, 506], [174, 0, 2, 0, 0], [337, 512, 506, 470, 504]],
]
TABLE2 = [
    [
        [0.08, 0.0029, 0.0052, 0.11, 0.01],
        [0.13, 0.0056, 0.12, 1.59, 0.13],
        [0.24, 0.0029, 0.0051, 0.15, 0.0096],
        [0.25, 0.0062, 0.56, 1.82, 0.49],
    ],
    [
        [0.06, 0.0013, 0.0016, 0.13, 0.0016],
        [0.03, 0.0024, 0.07, 0.51, 0.12],
        [0.05, 0.0012, 0.0016, 0.10, 0.0020],
        [0.07, 0.0024, 0.16, 0.47, 0.16],
    ],
    [
        [0.25, 0.0027, 0.08, 0.01, 0.01],
        [0.20, 0.0056, 0.54, 1.28, 0.55],
        [0.15, 0.0030, 0.0092, 0.01, 0.0072],
        [0.13, 0.0068, 0.36, 1.41, 0.38],
    ],
    [
        [0.11, 0.0020, 0.0045, 0.01, 0.0094],
        [0.04, 0.0048, 0.17, 1.03, 0.29],
        [0.05, 0.0019, 0.0037, 0.01, 0.0026],
        [0.05, 0.0048, 0.16, 1.04, 0.20],
    ],
]


def _frame(values, rows) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples([(d, a, r) for d, a in BLOCKS for r in rows], names=["dataset", "arch", "row"])
    return pd.DataFrame([row for block in values for row in block], index=index, columns=COLUMNS)


def table1() -> pd.DataFrame:
    return _frame(TABLE1, ["Orig.1", "GAD 1", "Orig.2", "GAD 2"])


def table2() -> pd.DataFrame:
    return _frame(TABLE2, ["Sup.1", "GAD 1", "Sup.2", "GAD 2"])
