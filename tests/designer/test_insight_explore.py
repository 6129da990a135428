"""The Explore tab: top patches and activation maximization of the clicked block, on the latest run's weights."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.insight.explore import EMPTY_TEXT, NEAREST, TOP
from designer.training.runs import RunEntry
from engine.compile import compile_graph
from engine.project import project_to_dict
from engine.training.runs import RunRecord
from tests.designer.conftest import small_cnn, training_window

TIMEOUT = 60_000
CONV2, POOL2, OUTPUT = "n5", "n7", "n14"  # in the LeNet-5 template


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def entry_for(project, weights) -> RunEntry:
    """A run entry as the controller records one (snapshot + trained state_dict)."""
    snapshot = project_to_dict(project)
    return RunEntry(RunRecord(project.name, snapshot, [], {}), label="Run 1", weights=weights)


def wait_for(qtbot, view, start) -> str:
    with qtbot.waitSignal(view.ended, timeout=TIMEOUT) as ended:
        assert start()
    assert not view.is_busy() and view.busy.isHidden()
    return ended.args[0]


def test_after_training_the_clicked_conv_block_shows_patches_and_a_dream(qtbot, tmp_path):
    with training_window(qtbot, small_cnn(samples=64, epochs=1, every_batches=1000)) as window:
        ctl, panel = window.training, window.training.insight
        view = panel.explore
        assert view.header.text() == EMPTY_TEXT and not view.patches_button.isEnabled()
        window.scene.select_nodes([CONV2])
        assert view.node_id == CONV2 and not view.dream_button.isEnabled()
        with qtbot.waitSignal(ctl.run_ended, timeout=TIMEOUT) as ended:
            assert ctl.start() is not None
            assert view.training and not view.patches_button.isEnabled()
        assert ended.args[0] == "finished"
        assert view.entry is not None and view.entry.weights is not None
        assert "conv2" in view.header.text() and "16 channels" in view.header.text()
        assert view.patches_button.isEnabled() and view.channel.maximum() == 15

        ctl.show_insight()
        panel.tabs.setCurrentWidget(view)
        view.channel.setValue(3)
        with qtbot.waitSignal(view.ended, timeout=TIMEOUT) as done:
            qtbot.mouseClick(view.patches_button, Qt.MouseButton.LeftButton)
            assert view.is_busy() and view.busy.isVisible()
            assert view.dream_button.isEnabled()  # NOTE: a new request may come while one runs
        assert done.args[0] == "patches" and not view.is_busy() and view.busy.isHidden()
        found = view.result
        assert found.unit.index == 3 and len(found.crops) == TOP and found.crops[0].shape == (1, 14, 14)
        assert view.plot.image.image is not None and len(view._texts) == TOP
        caption = view._texts[0].textItem.toPlainText()
        assert caption.startswith(f"{found.scores[0]:.3g}") and f"#{found.indices[0]} {found.labels[0]}" in caption
        assert "Top 9 of 64 images for channel 3 of 'conv2'" in view.caption.text()
        rows = list(csv.reader(open(panel.save_csv(tmp_path / "patches.csv"))))
        assert rows[0][:4] == ["rank", "sample", "class", "response"] and len(rows) == 1 + TOP
        assert panel.save_png(tmp_path / "explore.png").stat().st_size > 1000

        view.steps.setValue(15)
        with qtbot.waitSignal(view.ended, timeout=TIMEOUT) as done:
            qtbot.mouseClick(view.dream_button, Qt.MouseButton.LeftButton)
        assert done.args[0] == "dream" and view.result.image.shape == (1, 32, 32)
        assert view.result.box == (10, 10, 14, 14) and view._frame.isVisible()  # what the centre of 10×10 sees
        assert view.plot.image.image.shape[1] > 32 + 28 and len(view._texts) == 2  # the image, its window ×2
        assert "15 steps" in view.caption.text() and "outlined window" in view.caption.text()
        assert len(list(csv.reader(open(panel.save_csv(tmp_path / "dream.csv"))))) == 1 + 32 * 32

        # image retrieval: the images nearest to one sample at the clicked block
        assert view.sample.maximum() == 63  # the data set has been opened: 64 samples
        view.sample.setValue(5)
        with qtbot.waitSignal(view.ended, timeout=TIMEOUT) as done:
            qtbot.mouseClick(view.nearest_button, Qt.MouseButton.LeftButton)
        assert done.args[0] == "nearest"
        near = view.result
        assert near.query == 5 and len(near.indices) == NEAREST and 5 not in near.indices.tolist()
        assert np.all(np.diff(near.distances) >= 0) and near.features == 16 * 10 * 10  # conv2's maps, whole
        assert len(view._texts) == 1 + NEAREST and view._frame.isVisible()
        assert view._texts[0].textItem.toPlainText() == f"sample\n#5 {near.query_label}"
        assert view._texts[1].textItem.toPlainText() == f"{near.distances[0]:.3g}\n#{near.indices[0]} {near.labels[0]}"
        same = sum(label == near.query_label for label in near.labels)
        assert (f"The {NEAREST} images nearest to sample #5 (outlined) among the 63 others" in view.caption.text()
                and f"{same} of these {NEAREST} share its class ({near.query_label})" in view.caption.text())
        rows = list(csv.reader(open(panel.save_csv(tmp_path / "nearest.csv"))))
        assert rows[0] == ["rank", "sample", "class", "distance"] and rows[1][:2] == ["0", "5"]
        assert [int(r[1]) for r in rows[2:]] == near.indices.tolist()

        # a click on a neighbour looks for the images nearest to it in turn
        cols, w, h, gx, gy, py, samples = view._tiles
        assert samples == [5, *near.indices.tolist()]
        assert view.tile_at(w + gx / 2, h / 2) is None and view.tile_at(-1, 0) is None  # a gap, outside
        col, row = 1 % cols, 1 // cols
        centre = QPointF(col * (w + gx) + w / 2, row * (h + gy + py) + h / 2)
        assert view.tile_at(centre.x(), centre.y()) == near.indices[0]
        at = view.plot.mapFromScene(view.plot.getPlotItem().getViewBox().mapViewToScene(centre))
        with qtbot.waitSignal(view.ended, timeout=TIMEOUT) as done:
            qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=at)
        assert done.args[0] == "nearest" and view.result.query == near.indices[0] == view.sample.value()

        window.scene.select_nodes([OUTPUT])  # an output block has no channels of its own
        assert "output block" in view.header.text() and not view.patches_button.isEnabled()
        assert not view.find_patches() and not view.find_nearest()


def test_errors_show_in_the_view_and_the_thread_ends(panel, qtbot):
    view = panel.explore
    project = small_cnn(samples=64, epochs=1, every_batches=1000)
    project.probes.layer = None
    panel.end_run(entry_for(project, {"conv1.weight": torch.zeros(1)}))  # weights of another network
    assert view.entry is not None and view.node_id == POOL2  # no block clicked: the last with feature maps
    assert wait_for(qtbot, view, view.find_patches) == "failed"
    assert "do not fit this network" in view.message.text() and view.message.property("role") == "error"
    assert view.result is None and view.patches_button.isEnabled()

    panel.end_run(RunEntry(RunRecord("failed", project_to_dict(project), [], {}), weights=None))
    assert view.entry.name == "Run 1"  # a run without weights leaves the last one that had them
    panel.begin_run()
    assert "Training…" in view.message.text() and not view.find_patches() and not view.dream()
    torch.manual_seed(0)
    panel.end_run(entry_for(project, compile_graph(project.graph).module.state_dict()))
    assert view.message.isHidden() and view.dream_button.isEnabled()
    assert wait_for(qtbot, view, view.dream) == "dream"
    assert np.isfinite(view.result.image).all() and view.plot.image.image.ndim == 3
