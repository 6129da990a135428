"""What each output block trains against, what its loss is called and which score a run reports first.

Plain tables, no PyTorch: the window's training setup, the data checks and the Train button read
them without importing PyTorch (which takes a second or more), and the trainer's objectives
(:mod:`engine.training.objectives`) compute the losses and metrics they name.
"""

from __future__ import annotations

from engine.data.basics import TARGET_WORDS

__all__ = ["HEAD_TARGETS", "LOSS_NAMES", "MAIN_METRIC", "main_metric"]

#: head type -> (target key, what the learner must provide, in words)
HEAD_TARGETS = {
    head: (key, TARGET_WORDS[key])
    for head, key in (
        ("ClassificationOutput", "label"),
        ("BinaryOutput", "binary"),
        ("RegressionOutput", "value"),
        ("SegmentationOutput", "mask"),
        ("BoxOutput", "box"),
    )
}

#: head type -> its loss, in words (what the training setup shows)
LOSS_NAMES = {
    "ClassificationOutput": "cross-entropy",
    "BinaryOutput": "binary cross-entropy",
    "RegressionOutput": "mean squared error",
    "SegmentationOutput": "per-pixel cross-entropy",
    "BoxOutput": "mean squared error of the box",
}

#: head type -> the metric shown as "the" score of a run, and whether higher is better
MAIN_METRIC = {
    "ClassificationOutput": ("accuracy", True),
    "BinaryOutput": ("accuracy", True),
    "RegressionOutput": ("r2", True),
    "SegmentationOutput": ("iou", True),
    "BoxOutput": ("box_iou", True),
}


def main_metric(graph) -> str:
    """The score a run of ``graph`` reports first: that of its first output block ("score" without one)."""
    heads = [n.type for n in graph.nodes.values() if n.spec.role == "head"]
    return MAIN_METRIC[heads[0]][0] if heads and heads[0] in MAIN_METRIC else "score"
