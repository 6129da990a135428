"""On-demand views of a finished run: the model and data rebuilt from a snapshot, patches and dreams."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.compile import compile_graph
from engine.config import DataConfig
from engine.data import Normalizer, load_dataset, split_dataset
from engine.graph import Graph
from engine.probes import ProbeError, Tap
from engine.probes.explore import dream, load_run, top_patches, unit_of
from engine.probes.ondemand import unit_activation
from engine.project import Project, project_to_dict
from tests.engine.helpers import chain, gap_net, vector_input

SAMPLES = 40


def tiny_cnn():
    """Input 1×16×16 → Conv (4 filters) → ReLU → Conv (stride 2) → ReLU → GAP → Dense → Class output, on shapes."""
    g, ids = gap_net(channels=1, classes=3, filters=4)
    p = Project(name="tiny cnn", graph=g, data=DataConfig.from_dict({"dataset": "shapes", "samples": SAMPLES}))
    torch.manual_seed(0)
    weights = compile_graph(g).module.state_dict()
    return project_to_dict(p), ids, weights


@pytest.fixture(scope="module")
def trained():
    snapshot, ids, weights = tiny_cnn()
    return load_run(snapshot, weights), ids, snapshot


def training_inputs(snapshot_project):
    """The inputs as the trainer prepares them: load, split, fit the normalizer on the training split."""
    cfg = snapshot_project.data
    data = load_dataset(cfg, (1, 16, 16))
    train = split_dataset(data, cfg.val_fraction, cfg.test_fraction, cfg.seed).train
    return data, Normalizer.fit(train).transform(data.x)


def test_the_run_is_rebuilt_with_its_weights_and_normalized_data(trained):
    run, ids, snapshot = trained
    _, weights = tiny_cnn()[1:]
    for key, value in run.model.state_dict().items():
        torch.testing.assert_close(value, weights[key])
    assert not run.model.training and not any(p.requires_grad for p in run.model.parameters())
    data, x = training_inputs(run.project)
    torch.testing.assert_close(run.inputs(), x)
    torch.testing.assert_close(run.data().x, data.x)
    np.testing.assert_allclose(run.to_pixels(x[3]), data.x[3].numpy(), atol=1e-5)


def test_top_patches_are_receptive_field_windows_of_the_strongest_responses(trained):
    run, ids, _ = trained
    relu2 = ids["relu2"]
    found = top_patches(run, relu2, 2, top=5, batch_size=16)
    assert found.rf_size == 5 and found.searched == SAMPLES
    assert len(found.crops) == 5 and all(c.shape == (1, 5, 5) and c.dtype == np.float32 for c in found.crops)
    assert np.all(np.diff(found.scores) <= 0)
    data, x = training_inputs(run.project)
    with torch.no_grad():
        maps = Tap(run.graph, run.compiled.code).run(run.model, x, {relu2})[relu2][:, 2]
    per_image = maps.flatten(1).max(1).values
    np.testing.assert_allclose(found.scores, torch.sort(per_image, descending=True).values[:5].numpy(), rtol=1e-5)
    padded = F.pad(data.x, (8, 8, 8, 8))
    for score, i, (top, left, h, w), crop, inside in zip(found.scores, found.indices, found.boxes, found.crops,
                                                          found.inside):
        # the score is the unit's response at the position whose window is the box (jump 2, offset 0)
        r, c = (top + 2) // 2, (left + 2) // 2
        assert (h, w) == (5, 5) and float(maps[i, r, c]) == pytest.approx(float(score), rel=1e-5)
        # the crop shows the raw (not normalized) pixels; outside the image it is 0 and not "inside"
        np.testing.assert_array_equal(crop, padded[i, :, top + 8: top + 13, left + 8: left + 13].numpy())
        rows = (np.arange(top, top + 5) >= 0) & (np.arange(top, top + 5) < 16)
        cols = (np.arange(left, left + 5) >= 0) & (np.arange(left, left + 5) < 16)
        np.testing.assert_array_equal(inside, rows[:, None] & cols[None, :])
    assert found.labels == [data.classes[int(data.targets["label"][i])] for i in found.indices]


def test_a_vector_unit_takes_whole_images(trained):
    run, ids, _ = trained
    found = top_patches(run, ids["fc"], 1, top=3)
    assert found.rf_size is None and all(c.shape == (1, 16, 16) for c in found.crops)
    assert found.boxes.tolist() == [[0, 0, 16, 16]] * 3 and all(m.all() for m in found.inside)


def test_dream_excites_the_unit_more_than_the_start(trained):
    run, ids, _ = trained
    made = dream(run, ids["conv2"], 4, steps=25, lr=0.05)
    assert made.image.shape == (1, 16, 16) and made.image.dtype == np.float32
    tap = Tap(run.graph, run.compiled.code)
    norm = run.normalizer()
    with torch.no_grad():
        again = norm.transform(torch.from_numpy(made.image)[None])
        response = float(unit_activation(run.model, tap, ids["conv2"], 4, again)[0])
        start = float(unit_activation(run.model, tap, ids["conv2"], 4, 0.1 * torch.randn(1, 1, 16, 16))[0])
    assert made.response == pytest.approx(response, rel=1e-4, abs=1e-5)
    assert made.response > start + 0.5
    # conv2's centre (4, 4) sees the 5×5 window at (6, 6): only the small L2 penalty moves the pixels outside
    assert made.box == (6, 6, 5, 5) and made.window.shape == (1, 5, 5) and made.inside.all()
    np.testing.assert_array_equal(made.window, made.image[:, 6:11, 6:11])
    noise = run.to_pixels(0.1 * torch.randn((1, 16, 16), generator=torch.Generator().manual_seed(0)))
    moved = np.abs(made.image - noise)[0]
    outside = np.ones((16, 16), bool)
    outside[6:11, 6:11] = False
    assert moved[~outside].mean() > 20 * moved[outside].mean()
    assert dream(run, ids["fc"], 0, steps=2).box is None


@pytest.mark.parametrize(
    "block, channel, message",
    [
        ("conv2", 6, "'.*' has 6 channels; 6 is not one of them \\(0 to 5\\)"),
        ("conv2", -1, "6 channels"),
        ("fc", 3, "3 units"),
        ("input", 0, "is the network's input"),
        ("out", 0, "is an output block"),
        ("nowhere", 0, "not in the network of the latest run"),
    ],
)
def test_blocks_and_channels_without_a_unit_are_refused(trained, block, channel, message):
    run, ids, _ = trained
    node_id = ids.get(block, block)
    with pytest.raises(ProbeError, match=message):
        unit_of(run, node_id, channel)
    with pytest.raises(ProbeError, match=message):
        top_patches(run, node_id, channel)
    with pytest.raises(ProbeError, match=message):
        dream(run, node_id, channel, steps=1)


def test_a_run_without_weights_or_image_data_is_refused():
    snapshot, ids, weights = tiny_cnn()
    with pytest.raises(ProbeError, match="no trained weights"):
        load_run(snapshot, None)
    with pytest.raises(ProbeError, match="do not fit"):
        load_run(snapshot, {k: v for k, v in weights.items() if "conv" not in k})
    with pytest.raises(ProbeError, match="at least 1 step"):
        dream(load_run(snapshot, weights), ids["conv2"], 0, steps=0)
    g = Graph()
    chain(g, vector_input(g, 4), ("Dense", {"units": 3}), "ClassificationOutput")
    p = Project(name="iris", graph=g, data=DataConfig.from_dict({"dataset": "iris"}))
    with pytest.raises(ProbeError, match="need image data.*takes 4 features.*iris"):
        load_run(project_to_dict(p), compile_graph(g).module.state_dict())
