"""The window never loses edits to a failed save: a dialog explains it and the window stays open."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from designer.main_window import MainWindow
from engine.project import load_project

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes as POSIX has them")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture
def window(qtbot):
    """A shown window with an edited, saved-once project; closed without a prompt at the end."""
    w = MainWindow()
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.document.undo_stack.setClean()
    w.close()
    w.deleteLater()
    QApplication.processEvents()


@pytest.fixture
def dialogs(monkeypatch):
    """Answer Save at the unsaved-changes prompt; record every error dialog's text."""
    shown: dict[str, list[str]] = {"question": [], "critical": []}

    def question(*args, **kwargs):
        shown["question"].append(args[2])
        return QMessageBox.StandardButton.Save

    monkeypatch.setattr(QMessageBox, "question", question)
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: shown["critical"].append(a[2]))
    return shown


def saved_then_edited(w: MainWindow, path) -> None:
    w.new_from_template("mlp")
    assert w.files.save_to(path)
    w.view.add_at_center("ReLU")
    assert w.document.is_modified()


@posix_only
def test_saving_a_read_only_project_at_close_keeps_the_window_open(window, dialogs, tmp_path):
    path = tmp_path / "net.json"
    saved_then_edited(window, path)
    path.chmod(0o444)
    before = path.read_bytes()
    assert not window.close()
    assert window.isVisible() and window.document.is_modified()
    assert len(dialogs["question"]) == 1 and len(dialogs["critical"]) == 1
    assert "net.json" in dialogs["critical"][0] and "read-only" in dialogs["critical"][0]
    assert path.read_bytes() == before


def test_an_unexpected_error_while_saving_at_close_keeps_the_window_open(window, dialogs, tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    saved_then_edited(window, path)

    def broken(project, target):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr("engine.project.save_project", broken)
    assert not window.close()
    assert window.isVisible() and window.document.is_modified()
    assert len(dialogs["critical"]) == 1 and "net.json" in dialogs["critical"][0]
    assert "something nobody planned for" in dialogs["critical"][0]


def test_a_block_name_utf8_cannot_store_is_explained_at_close(window, dialogs, tmp_path):
    path = tmp_path / "net.json"
    saved_then_edited(window, path)
    graph = window.document.graph
    nid = next(iter(graph.nodes))
    graph.rename(nid, "bad\udc80name")
    assert not window.close()
    assert window.isVisible()
    (msg,) = dialogs["critical"]
    assert "net.json was not saved" in msg and f"(id {nid!r})" in msg
    assert load_project(path).name == window.document.project.name  # the old file is still whole


def test_a_successful_save_at_close_closes_the_window(window, dialogs, tmp_path):
    path = tmp_path / "net.json"
    saved_then_edited(window, path)
    blocks = len(window.document.graph)
    assert window.close()
    assert not window.isVisible() and dialogs["critical"] == []
    assert len(load_project(path).graph) == blocks


@posix_only
def test_opening_something_that_is_not_a_file_is_explained(window, dialogs, tmp_path):
    folder = tmp_path / "folder.json"
    folder.mkdir()
    assert not window.files.open_path(folder, ask=False)
    assert dialogs["critical"] == ["folder.json is not a regular file (it is a folder)"]
    assert window.is_start_state()


def test_an_error_anywhere_in_the_close_prompt_keeps_the_window_open(window, dialogs, monkeypatch):
    window.new_from_template("mlp")
    window.view.add_at_center("ReLU")

    def broken(self):
        raise RuntimeError("the save dialog broke")

    monkeypatch.setattr("designer.file_ops.FileController.save", broken)
    assert not window.close()
    assert window.isVisible() and window.document.is_modified()
    (msg,) = dialogs["critical"]
    assert "the save dialog broke" in msg
