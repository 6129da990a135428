"""The output blocks' declarations as the rest of the program asks for them: no PyTorch.

Each output block declares, once, what it trains against, its loss, its metrics (with their bounds,
titles and which way is better), its main metric and its decision views
(:class:`engine.layers.heads.HeadSpec`, on the block's ``LayerSpec``). The window's training setup,
the data checks, the dashboard and the Train button read them here without importing PyTorch (which
takes a second or more); the trainer's objectives (:mod:`engine.training.objectives`) compute the
losses and metrics they name, the probes offer the views they list and a sweep chooses by the main
metric in its direction.
"""

from __future__ import annotations

from engine.layers import registry
from engine.layers.heads import LOSS, HeadSpec, Metric

__all__ = [
    "LOSS", "SCORE", "HeadSpec", "Metric", "head_for_target", "head_spec", "head_specs", "heads_with_view",
    "main_metric", "main_score", "metrics", "score_metric",
]

#: the score of a network without an output block (nothing to measure; higher would be better)
SCORE = Metric("score", "score")


def head_spec(type_id: str) -> HeadSpec:
    """The declaration of the output block ``type_id``; KeyError when it is not an output block."""
    spec = registry.get(type_id).head
    if spec is None:
        raise KeyError(f"{type_id!r} is not an output block")
    return spec


def head_specs() -> dict[str, HeadSpec]:
    """Every output block's declaration by type id, in the palette's order."""
    return {s.type_id: s.head for s in registry.all_specs() if s.head is not None}


def heads_with_view(view: str) -> tuple[str, ...]:
    """The output block types that offer the decision view ``view`` (``"class_maps"``), in the palette's order."""
    return tuple(t for t, h in head_specs().items() if view in h.views)


def head_for_target(key: str) -> str:
    """The output block type that trains against the target ``key`` (``"label"`` -> ``ClassificationOutput``).

    Where several do (``"binary"``: the Binary and the Perceptron output), the first in the palette's order,
    the one the data checks offer to add.
    """
    return next(t for t, h in head_specs().items() if h.target == key)


def metrics() -> dict[str, Metric]:
    """Every metric an output block reports, by key (not the loss), in the palette's order of the blocks."""
    out: dict[str, Metric] = {}
    for head in head_specs().values():
        for m in head.metrics:
            out.setdefault(m.key, m)
    return out


def score_metric(key: str) -> Metric:
    """The declared metric that a run's score ``key`` measures; :data:`SCORE` when no output block declares it.

    ``key`` as the metrics files write it: ``val_r2``, ``test_accuracy``, ``val_loss``, or with a head's name
    before it when the network has several heads (``val_boxes_box_iou``).
    """
    key = key.removeprefix("val_").removeprefix("test_")
    known = {LOSS.key: LOSS, **metrics()}
    if key in known:
        return known[key]
    ends = [m for name, m in known.items() if key.endswith("_" + name)]
    return max(ends, key=lambda m: len(m.key)) if ends else SCORE


def main_score(graph) -> Metric:
    """The score a run of ``graph`` reports first and a sweep chooses by: its first output block's main metric."""
    heads = [n for n in graph.nodes.values() if n.spec.head is not None]
    return heads[0].spec.head.main_metric if heads else SCORE


def main_metric(graph) -> str:
    """The key of :func:`main_score` ("score" for a network without an output block)."""
    return main_score(graph).key
