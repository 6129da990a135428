"""Runs that stay: trained in the window, on disk beside the project, listed after a restart, continued,
forked, renamed, deleted and exported with their weights and normalization."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox

from designer import theme
from designer.main_window import MainWindow
from designer.settings import data_dir
from designer.training.dashboard import format_metric
from engine.data import load_dataset, split_dataset
from engine.project import load_project, save_project
from engine.training.runs import list_runs, read_run, runs_dir
from tests.designer.conftest import small_cnn, training_window
from tests.engine.helpers import score_exported

RUN_TIMEOUT = 120_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, qapp):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


def train(qtbot, w: MainWindow, **kw) -> str:
    with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT) as blocker:
        assert w.training.start(**kw) is not None
    return blocker.args[0]


def saved_project(tmp_path: Path, epochs: int = 2) -> Path:
    p = small_cnn(samples=150, epochs=epochs)
    p.probes.enabled = False
    path = tmp_path / "lenet.json"
    save_project(p, path)
    return path


def open_window(qtbot, path: Path | None = None) -> MainWindow:
    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    if path is not None:
        assert w.files.open_path(path, ask=False)
    return w


def close_window(w: MainWindow) -> None:
    w.training.shutdown()
    w.document.undo_stack.setClean()
    w.close()
    w.deleteLater()
    QApplication.processEvents()


@pytest.mark.slow
def test_a_run_from_the_window_stays_after_a_restart_and_exports_what_it_trained(qtbot, tmp_path):
    path = saved_project(tmp_path)
    w = open_window(qtbot, path)
    try:
        assert train(qtbot, w) == "finished"
        (record,), problems = list_runs(runs_dir(path))
        assert not problems and record.status == "finished" and [r["epoch"] for r in record.history] == [1, 2]
        score = record.summary["test"]["accuracy"]
    finally:
        close_window(w)

    w = open_window(qtbot, path)  # the program again, as after a restart
    try:
        runs = w.training.runs
        (entry,) = runs.entries
        assert entry.name == "Run 1" and entry.path == record.path and entry.outcome == "finished"
        assert f"test accuracy {format_metric('accuracy', score)}" in runs.list.item(0).text()
        (curve,) = runs.loss_curves.values()
        assert list(curve.getData()[0]) == [1.0, 2.0]
        assert w.training.insight.explore.entry is entry  # Explore works on the stored weights
        (tmp_path / "out").mkdir()
        written = w.files.export_code(tmp_path / "out" / "lenet.py", ask=False)
    finally:
        close_window(w)
    assert [p.name for p in written] == ["lenet.py", "lenet.pt"]
    project = load_project(path)
    data = load_dataset(project.data, (1, 32, 32), base_dir=tmp_path)
    _, _, test = split_dataset(data, project.data.val_fraction, project.data.test_fraction, project.data.seed)
    np.savez(tmp_path / "test.npz", x=test.x.numpy(), y=test.targets["label"].numpy())
    accuracy, _ = score_exported(written[0], "LeNet5", written[1], tmp_path / "test.npz")
    assert abs(accuracy - score) <= 0.01


def test_runs_of_an_unsaved_project_move_beside_it_when_it_is_saved(qtbot, tmp_path):
    p = small_cnn(samples=120, epochs=1)
    p.probes.enabled = False
    with training_window(qtbot, p) as w:
        assert train(qtbot, w) == "finished"
        unsaved = data_dir() / "unsaved-runs" / w.document.uid
        assert len(list_runs(unsaved)[0]) == 1
        assert w.files.save_to(tmp_path / "mine.json")
        assert not unsaved.exists()
        (record,), _ = list_runs(tmp_path / "mine.runs")
        assert [e.path for e in w.training.runs.entries] == [record.path]


def test_continue_and_fork_from_the_window(qtbot, tmp_path):
    path = saved_project(tmp_path, epochs=2)
    w = open_window(qtbot, path)
    try:
        assert train(qtbot, w) == "finished"
        runs = w.training.runs
        (entry,) = runs.entries
        with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT):
            assert w.training.continue_run(entry, more=1) is not None
        (continued,) = runs.entries  # the same run, one epoch longer, in the same folder
        assert continued.path == entry.path and [r["epoch"] for r in continued.history] == [1, 2, 3]
        assert len(w.training.dashboard.val_epochs) == 3  # the curve shows the epochs before too
        w.document.project.training.lr = 0.0005
        with qtbot.waitSignal(w.training.run_ended, timeout=RUN_TIMEOUT):
            assert w.training.fork_run(continued, epoch=1, epochs=2) is not None
        fork = runs.entries[-1]
        assert fork.path != continued.path and fork.record.parent == {"run": continued.path.name, "epoch": 1}
        assert fork.record.project["training"]["lr"] == 0.0005
        assert "← Run 1 @ 1" in runs.list.item(1).text()
        assert [r["epoch"] for r in read_run(fork.path).history] == [1, 2]
    finally:
        close_window(w)


def test_rename_delete_and_show_a_run(qtbot, tmp_path, monkeypatch):
    path = saved_project(tmp_path, epochs=1)
    w = open_window(qtbot, path)
    try:
        assert train(qtbot, w) == "finished"
        runs = w.training.runs
        (entry,) = runs.entries
        assert runs.rename_current("wide <b>net</b>")
        assert read_run(entry.path).label == "wide <b>net</b>" and "wide <b>net</b>" in runs.list.item(0).text()
        shown = []
        monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: shown.append(url.toLocalFile()) or True)
        assert runs.show_current_folder() and shown == [str(entry.path)]
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
        assert not runs.delete_current() and entry.path.exists()
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
        assert runs.delete_current() and not entry.path.exists() and runs.entries == []
    finally:
        close_window(w)


def test_the_runs_dock_shows_only_the_open_projects_runs(qtbot, tmp_path):
    first = saved_project(tmp_path)
    second = tmp_path / "other.json"
    save_project(load_project(first), second)
    w = open_window(qtbot, first)
    try:
        assert train(qtbot, w, epochs=1) == "finished"
        assert len(w.training.runs.entries) == 1
        assert w.files.open_path(second, ask=False)
        assert w.training.runs.entries == []
        assert w.files.open_path(first, ask=False)
        assert len(w.training.runs.entries) == 1
    finally:
        close_window(w)


DRIVER = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QSettings
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[2])
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from designer.main_window import MainWindow
    w = MainWindow()
    w.files.open_path(sys.argv[1], ask=False)
    w.document.project.training.epochs = 100000
    def on_epoch(done):
        print("epoch", done.epoch, flush=True)
    w.training.start()
    w.training.session.epoch_done.connect(on_epoch)
    app.exec()
    """
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_of_the_window_during_a_run_leaves_a_readable_run_folder(tmp_path):
    path = saved_project(tmp_path)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(path), str(tmp_path / "settings2")], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(600, proc.kill)  # NOTE: only so a broken driver cannot hang the suite
    watchdog.start()
    try:
        seen = 0
        while seen < 2:  # NOTE: waits for the window to report two finished epochs
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            seen += line.startswith("epoch")
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (record,), problems = list_runs(runs_dir(path))
    assert not problems
    epochs = [r["epoch"] for r in record.history]
    assert len(epochs) >= 2 and epochs == list(range(1, len(epochs) + 1))
    assert record.status in ("running", "interrupted", "stopped")
    assert json.loads((record.path / "project.json").read_text())["name"] == load_project(path).name


def test_the_runs_overlay_compares_training_loss_per_batch_against_epochs(qtbot, tmp_path):
    """Two runs with other batch sizes: their per-batch curves both span the epochs they trained."""
    from designer.training.runs import batch_series

    path = saved_project(tmp_path, epochs=2)
    w = open_window(qtbot, path)
    try:
        assert train(qtbot, w) == "finished"
        w.document.project.training.batch_size = 16
        assert train(qtbot, w) == "finished"
        runs = w.training.runs
        runs.set_checked(runs.entries)
        kinds = [runs.loss_kind.itemData(i) for i in range(runs.loss_kind.count())]
        runs.loss_kind.setCurrentIndex(kinds.index("batch"))
        curves = list(runs.loss_curves.values())
        assert len(curves) == 2 and runs.loss_plot.getPlotItem().titleLabel.text.startswith("Training loss per batch")
        for entry, curve in zip(runs.entries, curves):
            x, y = curve.getData()
            steps = entry.history[-1]["step"]
            assert len(x) == steps == len(entry.record.batch_losses())
            assert x[-1] == pytest.approx(2.0) and x[0] == pytest.approx(2.0 / steps)
            # the smoothing is the dashboard's: bias-corrected EMA of the stored losses
            raw = entry.record.batch_losses().astype(float)
            ema = 0.0
            for i, v in enumerate(raw):
                ema = 0.9 * ema + 0.1 * v
            assert y[-1] == pytest.approx(ema / (1 - 0.9 ** len(raw)))
            assert np.array_equal(batch_series(entry)[0], x)
        assert len(runs.entries[1].record.batch_losses()) > len(runs.entries[0].record.batch_losses())
        runs.loss_kind.setCurrentIndex(kinds.index("train"))
        x, y = next(iter(runs.loss_curves.values())).getData()
        assert list(x) == [1.0, 2.0] and list(y) == [r["train_loss"] for r in runs.entries[0].history]
    finally:
        close_window(w)
