"""Image retrieval from the latent space: the images whose features at a block lie closest to one sample's.

Checked against an independent computation: the features written out with ``torch.nn.functional``
from the trained weights, every pairwise distance in numpy, and numpy's sort.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.compile import compile_graph
from engine.config import DataConfig
from engine.data import Normalizer, load_dataset, split_dataset
from engine.data.streaming import StreamDataset
from engine.probes import ProbeError
from engine.probes.explore import load_run, nearest
from engine.project import Project, project_to_dict
from tests.engine.helpers import gap_net
from tests.engine.test_streaming import make_folder
from tests.engine.test_streaming_more import forbid_loading_whole

SAMPLES = 60


@pytest.fixture(scope="module")
def trained():
    """The gap net (1×16×16 → conv 4 → relu → conv 6 stride 2 → relu → GAP → Dense 3) on 60 shapes."""
    g, ids = gap_net(channels=1, classes=3, filters=4)
    p = Project(name="tiny", graph=g, data=DataConfig.from_dict({"dataset": "shapes", "samples": SAMPLES}))
    torch.manual_seed(0)
    weights = compile_graph(g).module.state_dict()
    return load_run(project_to_dict(p), weights), ids, weights


@pytest.fixture(scope="module")
def by_hand(trained) -> tuple[dict[str, np.ndarray], object]:
    """Every block's output for every sample, flattened, from the weights with torch.nn.functional."""
    run, _, weights = trained
    cfg = run.project.data
    data = load_dataset(cfg, (1, 16, 16))
    x = Normalizer.fit(split_dataset(data, cfg.val_fraction, cfg.test_fraction, cfg.seed).train).transform(data.x)
    with torch.no_grad():
        conv1 = F.conv2d(x, weights["conv.weight"], weights["conv.bias"], padding=1)
        relu1 = conv1.relu()
        conv2 = F.conv2d(relu1, weights["conv1.weight"], weights["conv1.bias"], stride=2, padding=1)
        relu2 = conv2.relu()
        gap = relu2.mean(dim=(2, 3))
        fc = F.linear(gap, weights["fc.weight"], weights["fc.bias"])
    found = dict(conv1=conv1, relu1=relu1, conv2=conv2, relu2=relu2, gap=gap, fc=fc)
    return {k: v.flatten(1).double().numpy() for k, v in found.items()}, data


@pytest.mark.parametrize("block", ["conv1", "relu1", "relu2", "gap", "fc"])
@pytest.mark.parametrize("query, k", [(0, 1), (17, 5), (SAMPLES - 1, 8), (31, SAMPLES - 1), (5, SAMPLES + 10)])
def test_the_nearest_images_are_those_numpy_finds(trained, by_hand, block, query, k):
    run, ids, _ = trained
    features, data = by_hand
    f = features[block]
    distances = np.sqrt(((f - f[query]) ** 2).sum(1))
    order = [i for i in np.argsort(distances, kind="stable") if i != query][:k]
    near = nearest(run, ids[block], query, k, batch_size=7)
    assert near.indices.tolist() == order
    np.testing.assert_allclose(near.distances, distances[order], rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(near.distances) >= 0) and near.features == f.shape[1]
    assert near.searched == SAMPLES - 1 and near.query == query
    labels = data.targets["label"].numpy()
    names = [data.classes[c] for c in labels]
    assert near.labels == [names[i] for i in order] and near.query_label == names[query]
    assert near.same_class == int(np.sum(labels[order] == labels[query]))
    np.testing.assert_array_equal(near.query_image, data.x[query].numpy())  # pictures are raw pixels
    for i, image in zip(order, near.images):
        np.testing.assert_array_equal(image, data.x[i].numpy())


@pytest.mark.parametrize("block, sample, k, message", [
    ("input", 0, 3, "is the network's input"),
    ("out", 0, 3, "is an output block"),
    ("relu2", SAMPLES, 3, f"sample {SAMPLES} does not exist: the data set has {SAMPLES} samples \\(0 to {SAMPLES - 1}\\)"),
    ("relu2", -1, 3, "sample -1 does not exist"),
    ("relu2", 0, 0, "at least 1, not 0"),
])
def test_what_has_no_nearest_images_is_refused_saying_why(trained, block, sample, k, message):
    run, ids, _ = trained
    with pytest.raises(ProbeError, match=message):
        nearest(run, ids[block], sample, k)


def folder_run(root, budget: float):
    g, ids = gap_net(channels=3, classes=3)
    p = Project(name="pets", graph=g)
    p.data.dataset, p.data.path, p.data.memory_budget_gib, p.data.workers = "image_folder", str(root), budget, 0
    torch.manual_seed(0)
    return load_run(p, compile_graph(g).module.state_dict()), ids


@pytest.mark.parametrize("block, query, k", [("relu1", 0, 6), ("gap", 20, 33), ("fc", 33, 4)])
def test_a_streamed_folder_gives_the_nearest_images_the_in_memory_path_gives(tmp_path, monkeypatch, block, query, k):
    root = make_folder(tmp_path / "pets", side=16, mode="RGB")
    run, ids = folder_run(root, budget=2.0)
    in_memory = nearest(run, ids[block], query, k, batch_size=5)
    forbid_loading_whole(monkeypatch)
    run, _ = folder_run(root, budget=0.0)
    assert isinstance(run.data(), StreamDataset)
    streamed = nearest(run, ids[block], query, k, batch_size=5)
    assert streamed.indices.tolist() == in_memory.indices.tolist() and streamed.labels == in_memory.labels
    np.testing.assert_allclose(streamed.distances, in_memory.distances, rtol=1e-4, atol=1e-5)
    assert (streamed.searched, streamed.same_class) == (in_memory.searched, in_memory.same_class) == (33, in_memory.same_class)
    for a, b in zip(streamed.images, in_memory.images):
        np.testing.assert_array_equal(a, b)


def test_a_streamed_folder_leaves_out_an_image_it_cannot_read_and_names_an_unreadable_query(tmp_path):
    root = make_folder(tmp_path / "pets", side=16, mode="RGB")
    run, ids = folder_run(root, budget=0.0)
    files = run.data().source.files
    first = nearest(run, ids["gap"], 3, 33)
    closest = int(first.indices[0])
    with open(files[closest], "wb") as f:
        f.write(b"no longer a picture")
    run, _ = folder_run(root, budget=0.0)
    again = nearest(run, ids["gap"], 3, 33)
    assert again.searched == 32 and closest not in again.indices.tolist()
    # NOTE: the normalization was fitted without the broken file, so distances move a little; the order of the rest
    # is checked against numpy in the in-memory tests
    with pytest.raises(ProbeError, match=f"sample {closest} cannot be read: {files[closest]}"):
        nearest(run, ids["gap"], closest, 3)
