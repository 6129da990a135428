"""File → Export training package…: the chosen run's package, written into the folder picked in a dialog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from designer import theme
from designer.main_window import MainWindow
from engine.export import trained_weights
from engine.project import load_project, save_project
from engine.templates import load_template
from engine.training.runs import new_run_dir, runs_dir
from engine.training.trainer import Trainer
from tests.designer.conftest import small_cnn


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, qapp):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


@pytest.fixture()
def open_window(qtbot):
    windows: list[MainWindow] = []

    def make(path: Path | None = None) -> MainWindow:
        w = MainWindow()
        w.resize(1280, 800)
        w.show()
        qtbot.waitExposed(w)
        if path is not None:
            assert w.files.open_path(path, ask=False)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.training.shutdown()
        w.document.undo_stack.setClean()
        w.close()
        w.deleteLater()
    QApplication.processEvents()


class Dialogs:
    """The file and choice dialogs, answered as a person would, remembering what they were shown."""

    def __init__(self, monkeypatch, folder: Path | None, choice: int = 0) -> None:
        self.folder, self.choice = folder, choice
        self.opened_in: list[str] = []
        self.choices: list[list[str]] = []
        self.warnings: list[str] = []
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", self._folder)
        monkeypatch.setattr(QInputDialog, "getItem", self._item)
        monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: self.warnings.append(text))

    def _folder(self, parent, caption, start, *args, **kwargs) -> str:
        self.opened_in.append(start)
        return str(self.folder) if self.folder is not None else ""

    def _item(self, parent, title, label, items, *args, **kwargs):
        self.choices.append(list(items))
        return items[self.choice], True


@pytest.mark.slow
def test_export_training_package_writes_the_chosen_runs_package(open_window, tmp_path, monkeypatch):
    project = small_cnn(samples=120, epochs=1)
    project.probes.enabled = False
    path = tmp_path / "lenet.json"
    save_project(project, path)
    run = new_run_dir(runs_dir(path))
    events = [e for e in Trainer(load_project(path), base_dir=tmp_path, out_dir=run, label="Run 1").events()]
    assert events and (run / "best.pt").is_file()
    w = open_window(path)
    dialogs = Dialogs(monkeypatch, tmp_path / "package")
    (tmp_path / "package").mkdir()  # a new, empty folder, as the dialog makes one

    w.act.export_package.trigger()

    assert dialogs.opened_in == [str(tmp_path)]  # the dialog opens in the project's folder
    assert dialogs.choices and dialogs.choices[0][0].startswith("Run 1")
    assert not dialogs.warnings
    files = sorted(p.name for p in (tmp_path / "package").iterdir())
    assert files == ["config.json", "data.npz", "model.pt", "model.py", "project.json", "train.py"]
    config = json.loads((tmp_path / "package" / "config.json").read_text())
    assert config["training"] == project.training.to_dict() and config["data"]["dataset"] == "shapes"
    state, spec = trained_weights(run)
    exported = torch.load(tmp_path / "package" / "model.pt", weights_only=True)
    for key, value in state.items():  # the run's best weights, and its normalization in the buffers
        assert torch.equal(exported[key], value)
    assert exported["input_mean"].flatten().tolist() == pytest.approx(list(spec.mean))
    assert exported["input_std"].flatten().tolist() == pytest.approx(list(spec.std))


def test_export_training_package_of_an_untrained_network_and_its_refusals(open_window, tmp_path, monkeypatch):
    w = open_window()
    w.files.new_from_template("perceptron")
    dialogs = Dialogs(monkeypatch, None)
    w.act.export_package.trigger()  # the folder dialog cancelled: nothing happens
    assert dialogs.opened_in and not dialogs.choices and not dialogs.warnings

    dialogs.folder = tmp_path / "p"
    w.act.export_package.trigger()
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "config.json", "data.npz", "model.py", "project.json", "train.py"]
    assert not dialogs.warnings

    w.files.new_from_template("localization")  # two output blocks: train.py trains one
    dialogs.folder = tmp_path / "u"
    w.act.export_package.trigger()
    (warning,) = dialogs.warnings
    assert "The package was not written" in warning and "trains one output block" in warning
    assert not (tmp_path / "u").exists()
    assert w.isVisible()
    assert load_template("localization").name in w.windowTitle()
