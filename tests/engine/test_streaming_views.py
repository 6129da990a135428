"""A stored run's views on data over the memory budget: Explore's top patches search the files a batch at a
time and a run's Insight is computed again from the samples the run itself looked at, never loading the set
whole, and both give what the in-memory path gives.

Small generated folders are forced onto the streaming path with ``memory_budget_gib=0``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.compile import compile_graph
from engine.data.streaming import StreamDataset
from engine.probes.explore import load_run, top_patches
from engine.probes.ondemand import max_activating_patches
from engine.probes.replay import replay
from engine.project import Project
from engine.training.events import InsightDone, ProbesDone
from engine.training.runs import read_run
from engine.training.trainer import Trainer
from tests.engine.helpers import gap_net
from tests.engine.test_streaming import make_folder
from tests.engine.test_streaming_more import forbid_loading_whole

#: the normalization's sums run in another order on the streaming path: responses agree to rounding
RTOL = 1e-5


def folder_run(root: Path, budget: float, *, normalize: bool = True, workers: int = 0, filters: int = 8):
    """A gap net over the folder, with weights drawn from seed 0, as :func:`load_run` rebuilds a run."""
    g, ids = gap_net(channels=3, classes=3, filters=filters)
    p = Project(name="pets", graph=g)
    p.data.dataset, p.data.path, p.data.memory_budget_gib, p.data.workers = "image_folder", str(root), budget, workers
    p.data.normalize = normalize
    torch.manual_seed(0)
    return load_run(p, compile_graph(g).module.state_dict()), ids


def same_patches(streamed, in_memory) -> None:
    assert streamed.indices.tolist() == in_memory.indices.tolist()
    assert streamed.boxes.tolist() == in_memory.boxes.tolist() and streamed.labels == in_memory.labels
    np.testing.assert_allclose(streamed.scores, in_memory.scores, rtol=RTOL, atol=1e-6)
    for a, b in zip(streamed.crops, in_memory.crops):
        np.testing.assert_array_equal(a, b)  # NOTE: crops are raw pixels, untouched by normalization
    for a, b in zip(streamed.inside, in_memory.inside):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("block, channel, top, batch, workers", [
    ("relu1", 0, 9, 128, 0), ("relu2", 5, 4, 5, 0), ("conv1", 3, 34, 7, 0), ("fc", 1, 6, 16, 1),
])
def test_top_patches_of_a_streamed_folder_are_those_the_in_memory_path_finds(tmp_path, monkeypatch, block, channel,
                                                                           top, batch, workers):
    root = make_folder(tmp_path / "pets", side=16, mode="RGB")
    run, ids = folder_run(root, budget=2.0)
    in_memory = top_patches(run, ids[block], channel, top=top, batch_size=batch)
    forbid_loading_whole(monkeypatch)
    run, _ = folder_run(root, budget=0.0, workers=workers)
    assert isinstance(run.data(), StreamDataset)
    read, source_read = [], type(run.data().source).read
    monkeypatch.setattr(type(run.data().source), "read", lambda self, i: read.append(i) or source_read(self, i))
    streamed = top_patches(run, ids[block], channel, top=top, batch_size=batch)
    same_patches(streamed, in_memory)
    assert streamed.searched == in_memory.searched == 34 and len(streamed.indices) == min(top, 34)
    if not workers:  # NOTE: a worker's reads happen in its own process
        # the normalization pass reads the training split, the search each file once, then only the pictures shown
        fitted = len(read) - 34 - len(streamed.indices)
        assert 0 < fitted < 34 and len(set(read[:fitted])) == fitted
        assert sorted(read[fitted : fitted + 34]) == list(range(34))
        assert read[fitted + 34 :] == streamed.indices.tolist()


def test_top_patches_of_a_streamed_folder_pass_over_a_file_they_cannot_read(tmp_path):
    root = make_folder(tmp_path / "pets", side=16, mode="RGB")
    run, ids = folder_run(root, budget=0.0, normalize=False)
    files = run.data().source.files
    everything = top_patches(run, ids["relu2"], 1, top=34)
    worst = int(everything.indices[0])
    Path(files[worst]).write_bytes(b"not a png any more")
    run, _ = folder_run(root, budget=0.0, normalize=False)
    found = top_patches(run, ids["relu2"], 1, top=5)
    assert found.searched == 33 and worst not in found.indices.tolist()
    # NOTE: the same ranking an independent search over the 33 readable images gives, by their own index
    rest = [i for i in range(34) if i != worst]
    x = torch.stack([run.raw(i) for i in rest])
    alone = max_activating_patches(run.model, run.compiled.code, run.graph, run.analysis, ids["relu2"], 1, x, 5)
    assert found.indices.tolist() == [rest[i] for i in alone.indices.tolist()]
    np.testing.assert_allclose(found.scores, alone.scores, rtol=RTOL)


def trained_folder_run(root: Path, out: Path, budget: float) -> list:
    g, _ = gap_net(channels=3, classes=3)
    p = Project(name="pets", graph=g)
    p.data.dataset, p.data.path, p.data.memory_budget_gib, p.data.workers = "image_folder", str(root), budget, 0
    p.training.epochs, p.training.batch_size, p.training.device = 2, 8, "cpu"
    return list(Trainer(p, out_dir=out, probes=True).events())


@pytest.mark.parametrize("looked_at", [512, 3])
def test_a_streamed_runs_insight_is_computed_again_as_the_run_showed_it_without_loading_the_set(tmp_path,
                                                                                              monkeypatch, looked_at):
    from engine.training import streamfeed

    root = make_folder(tmp_path / "pets", side=16, mode="RGB")
    monkeypatch.setattr(streamfeed, "INSIGHT_SAMPLES", looked_at)  # the views of a streamed run see the first ones
    forbid_loading_whole(monkeypatch)
    events = trained_folder_run(root, tmp_path / "r", budget=0.0)
    live = [e.views for e in events if isinstance(e, InsightDone)][-1]
    assert any(isinstance(e, ProbesDone) for e in events)
    record, weights = read_run(tmp_path / "r"), torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    again = replay(record.project, weights, epoch=2)
    insight = again["insight"]
    assert insight["epoch"] == 2
    np.testing.assert_array_equal(insight["confusion"]["matrix"], live["confusion"]["matrix"])
    assert np.sum(insight["confusion"]["matrix"]) == min(looked_at, events[0].val)
    assert list(insight["hardest"]["indices"]) == list(live["hardest"]["indices"])
    probes = again["probes"]
    assert "gradients" not in probes and "gradients" in probes["problems"]
    # NOTE: the probes picture the same first validation samples the in-memory path pictures
    monkeypatch.undo()
    snapshot = copy.deepcopy(record.project)
    snapshot["data"]["memory_budget_gib"] = 2.0
    in_memory = replay(snapshot, weights, epoch=2)["probes"]
    shown = min(snapshot["probes"]["probe_samples"], events[0].val)
    assert probes["images"].shape[0] == in_memory["images"].shape[0] == shown > 0
    np.testing.assert_array_equal(probes["images"], in_memory["images"])
    np.testing.assert_allclose(probes["cam"]["maps"], in_memory["cam"]["maps"], rtol=RTOL, atol=1e-6)
