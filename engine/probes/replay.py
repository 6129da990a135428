"""A run's last Insight, computed again from its stored weights (after a restart, or for an older run).

During training the Insight views are fed by the trainer's ``ProbesDone`` and ``InsightDone`` events. A
run folder keeps what is needed to compute them again: the project snapshot and the checkpoint
(weights and the normalizer fitted on the training split). :func:`replay` rebuilds the model and
the run's data split exactly as the trainer did (a set over the memory budget stays in its files: only the
samples the views look at are read, as during the run) and returns the two payloads in the same form as
the live events' ``results`` and ``views`` (with ``epoch``), so the window draws them with the same code::

    found = replay(record.project, checkpoint, base_dir=project_folder, epoch=12)
    panel.show_probes(found["probes"]); panel.show_insight(found["insight"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from engine.probes.explain import samples_source, training_normalizer
from engine.probes.explore import rebuild
from engine.project import Project

__all__ = ["replay"]


def replay(snapshot: Mapping[str, Any] | Project, weights: Mapping[str, Any], base_dir: str | Path | None = None,
           epoch: int | None = None) -> dict[str, Any]:
    """The ``probes`` and ``insight`` payloads of a trained run (see :class:`engine.probes.runner.ProbeRunner`).

    Raises:
        ProbeError: the network cannot be rebuilt, the weights do not fit, or the data cannot be loaded.
    """
    from engine.data import split_dataset
    from engine.data.streaming import first_samples, is_streamed
    from engine.probes.runner import ProbeRunner
    from engine.training.streamfeed import insight_samples

    project, compiled, analysis, saved_norm = rebuild(snapshot, weights)
    model = compiled.module
    cfg = project.data
    shape = tuple(compiled.code.input_shapes[0])
    data = samples_source(project, shape, base_dir)
    train, val, _ = split_dataset(data, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    norm = training_normalizer(project, saved_norm, data, shape, base_dir)
    shown = val if len(val) else train
    # NOTE: the probes and views of the run itself: the first samples of the split, and for the views the
    # whole split in memory, or its first INSIGHT_SAMPLES when it streams (engine.training.streamfeed).
    raw = first_samples(shown, project.probes.probe_samples)
    if is_streamed(shown):
        scored = insight_samples(shown, norm)
        probe_x = norm.transform(raw) if norm is not None else raw
    else:
        scored = norm.apply(shown) if norm is not None else shown
        probe_x = scored.x[: len(raw)]
    runner = ProbeRunner(project.graph, compiled.code, probe_x, config=project.probes, analysis=analysis,
                         display_x=raw if raw.dim() == 4 else None)
    views = runner.evaluate(model, scored)  # NOTE: first: it meets the probe images' true boxes for run()
    with torch.no_grad():
        probes = runner.run(model, step=None)
    probes.pop("gradients", None)  # NOTE: no step was taken: gradient flow exists only during training
    probes["problems"]["gradients"] = "gradient flow is shown while a run trains"
    try:
        probes["images"] = runner.images()
    except Exception:  # noqa: BLE001 - not image data: the views show no pictures, as during training
        probes["images"] = None
    return {"probes": probes, "insight": {"epoch": epoch, **views}}
