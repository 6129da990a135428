"""Autosave and recovery: unsaved edits go to a recovery file, and a crash or kill offers them back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from designer import autosave
from designer.autosave import (
    beside_file,
    offer_recovery,
    read_recovery,
    recovery_bytes,
    recovery_dir,
    writer_alive,
)
from designer.commands import AddNodeCommand
from designer.document import Document
from designer.main_window import MainWindow
from designer.settings import settings
from designer.training.commands import SetConfigCommand
from engine.fileio import atomic_write_bytes
from engine.project import load_project, project_to_dict, save_project
from engine.templates import load_template

ROOT = Path(__file__).resolve().parents[2]
B = QMessageBox.StandardButton


@pytest.fixture(autouse=True)
def settings_dir(tmp_path) -> Path:
    """The settings (and so the registry of recovery files) live in the test's folder."""
    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@dataclass
class Dialogs:
    """What the recovery question was asked, and the answers to give (Later when none is left)."""

    replies: list = field(default_factory=list)
    texts: list = field(default_factory=list)
    formats: list = field(default_factory=list)


@pytest.fixture(autouse=True)
def dialogs(monkeypatch) -> Dialogs:
    d = Dialogs()

    def exec_(box) -> int:
        d.texts.append(box.text())
        d.formats.append(box.textFormat())
        return d.replies.pop(0) if d.replies else B.Cancel

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return d


@pytest.fixture
def make_window(open_windows):
    """Open main windows with a short autosave delay; each is closed (without a prompt) at the end."""
    return lambda: open_windows(1000, 700, autosave_ms=20)


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


@pytest.fixture
def saved_project(tmp_path) -> Path:
    path = tmp_path / "projects" / "lenet.json"
    path.parent.mkdir()
    save_project(load_template("lenet5"), path)
    return path


def add_relu(w: MainWindow, name: str = "extra relu") -> None:
    w.document.push(AddNodeCommand(w.document, "ReLU", (400.0, 300.0), name=name))


def edit_and_wait(qtbot, w: MainWindow, name: str = "extra relu") -> Path:
    """Make one edit and wait for its autosave; the recovery file written."""
    with qtbot.waitSignal(w.autosaver.saved) as blocker:
        add_relu(w, name)
    return blocker.args[0]


def registered() -> list[str]:
    s = settings()
    s.beginGroup(autosave.REGISTRY_GROUP)
    files = [str(s.value(k)) for k in s.childKeys()]
    s.endGroup()
    return files


def leave_recovery(project_path: Path | None, edit: str = "left by a crash", project=None) -> tuple[Path, dict]:
    """A recovery file as a killed window leaves it (written, registered, nobody holding its lock).

    Returns the file and the project it holds.
    """
    doc = Document(project or load_template("lenet5"))
    doc.path = project_path
    doc.push(AddNodeCommand(doc, "ReLU", (400.0, 300.0), name=edit))
    uid = getattr(doc, "uid", None) or "feedc0de" * 4
    file = beside_file(project_path) if project_path else recovery_dir() / f"{uid}.json"
    atomic_write_bytes(file, recovery_bytes(doc, autosave._now()))
    autosave._register(file)
    expected = project_to_dict(doc.project)
    doc.undo_stack.setClean()
    doc.deleteLater()
    return file, expected


def node_names(w: MainWindow) -> set[str]:
    return {n.name for n in w.document.graph.nodes.values()}


# ---------------------------------------------------------------------- writing
def test_an_edit_is_autosaved_after_the_delay_and_saving_removes_it(window, qtbot, tmp_path):
    window.new_from_template("mlp")
    file = edit_and_wait(qtbot, window)
    assert file.parent == recovery_dir()  # never saved: in the data folder
    if getattr(window.document, "uid", None):
        assert file.name == f"{window.document.uid}.json"
    wrapper = json.loads(file.read_text(encoding="utf-8"))
    assert wrapper["format"] == "net-designer-recovery" and wrapper["version"] == 1 and wrapper["path"] is None
    assert project_to_dict(read_recovery(file).project) == project_to_dict(window.document.project)
    assert registered() == [str(file)] and writer_alive(file)
    assert window.files.save_to(tmp_path / "mlp.json")
    assert not file.exists() and not autosave._lock_path(file).exists()
    assert registered() == [] and not beside_file(tmp_path / "mlp.json").exists()


def test_a_saved_projects_recovery_file_sits_beside_it(window, qtbot, saved_project):
    assert window.open_path(saved_project)
    file = edit_and_wait(qtbot, window)
    assert file == saved_project.parent / ".lenet.json.recovery"
    rec = read_recovery(file)
    assert rec.path == saved_project and "extra relu" in {n.name for n in rec.project.graph.nodes.values()}


def test_undoing_back_to_the_saved_state_removes_it_and_redo_writes_it_again(window, qtbot, saved_project):
    assert window.open_path(saved_project)
    file = edit_and_wait(qtbot, window)
    window.document.undo_stack.undo()
    assert not file.exists() and registered() == []
    with qtbot.waitSignal(window.autosaver.saved):
        window.document.undo_stack.redo()
    assert file.exists()


def test_training_setup_edits_are_autosaved_including_merged_ones(window, qtbot):
    window.new_from_template("mlp")
    doc = window.document
    with qtbot.waitSignal(window.autosaver.saved) as first:
        doc.push(SetConfigCommand(doc, "training", {"epochs": 7}))
    with qtbot.waitSignal(window.autosaver.saved):
        doc.push(SetConfigCommand(doc, "training", {"epochs": 9}))  # merges into the step above
    assert doc.undo_stack.count() == 1
    assert read_recovery(first.args[0]).project.training.epochs == 9


def test_a_read_only_project_folder_falls_back_to_the_data_folder(window, qtbot, saved_project):
    assert window.open_path(saved_project)
    saved_project.parent.chmod(0o555)
    try:
        file = edit_and_wait(qtbot, window)
    finally:
        saved_project.parent.chmod(0o755)
    assert file.parent == recovery_dir()
    assert read_recovery(file).path == saved_project
    assert sorted(p.name for p in saved_project.parent.iterdir()) == ["lenet.json"]


def test_a_second_window_on_the_same_project_never_overwrites_the_first_ones_file(make_window, qtbot, saved_project):
    first, second = make_window(), make_window()
    assert first.open_path(saved_project) and second.open_path(saved_project)
    a = edit_and_wait(qtbot, first, "first window's edit")
    b = edit_and_wait(qtbot, second, "second window's edit")
    assert a == beside_file(saved_project) and b.parent == recovery_dir()
    assert "first window's edit" in {n.name for n in read_recovery(a).project.graph.nodes.values()}
    assert "second window's edit" in {n.name for n in read_recovery(b).project.graph.nodes.values()}


def test_closing_normally_after_discarding_deletes_the_recovery_file(make_window, qtbot, monkeypatch, saved_project):
    w = make_window()
    assert w.open_path(saved_project)
    file = edit_and_wait(qtbot, w)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: B.Discard)
    assert w.close()
    assert not file.exists() and registered() == []


# ---------------------------------------------------------------------- THE kill -9 test
DRIVER = r"""
import json, sys
from PySide6.QtCore import QSettings
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[1])
from designer.app import _application
app = _application()
from designer.commands import AddNodeCommand
from designer.main_window import MainWindow
from engine.project import project_to_dict
window = MainWindow()
window.autosaver.delay_ms = 50
window.show()
assert window.files.open_path(sys.argv[2], ask=False)
def autosaved(path):
    print("autosaved", json.dumps(project_to_dict(window.document.project)), flush=True)
window.autosaver.saved.connect(autosaved)
window.document.push(AddNodeCommand(window.document, "ReLU", (400.0, 300.0), name="added before the kill"))
app.exec()
"""


def run_until_autosaved(tmp_path: Path, settings_dir: Path, project: Path) -> dict:
    """Edit ``project`` in a real window in another process, kill -9 it right after the autosave.

    Returns the project that window was editing (as ``project_to_dict``).
    """
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    with open(tmp_path / "child-stderr.txt", "w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(settings_dir), str(project)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )
        # NOTE: a guard against a hung child only (the readline then ends); nothing is timed.
        guard = threading.Timer(300, proc.kill)
        guard.start()
        try:
            line = proc.stdout.readline()
        finally:
            guard.cancel()
            proc.kill()
            proc.wait()
            proc.stdout.close()
        err.seek(0)
        assert line.startswith("autosaved "), f"the window process did not autosave:\n{err.read()[-3000:]}"
    assert proc.returncode == -9
    return json.loads(line.split(" ", 1)[1])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_kill_9_during_an_edit_is_followed_by_the_offer_to_restore(
    make_window, qtbot, tmp_path, settings_dir, saved_project, dialogs
):
    original = saved_project.read_bytes()
    edited = run_until_autosaved(tmp_path, settings_dir, saved_project)
    file = beside_file(saved_project)
    assert file.exists() and not writer_alive(file)  # the lock died with the process

    w = make_window()  # as designer.app.run starts
    dialogs.replies.append(B.Yes)
    offer_recovery(w)
    assert len(dialogs.texts) == 1
    assert "closed without saving “LeNet-5”" in dialogs.texts[0] and str(saved_project) in dialogs.texts[0]
    assert dialogs.formats == [Qt.TextFormat.PlainText]
    doc = w.document
    assert project_to_dict(doc.project) == edited and "added before the kill" in node_names(w)
    assert doc.is_modified() and doc.path == saved_project and "*" in w.windowTitle()
    assert saved_project.read_bytes() == original  # nothing written until Save

    assert w.files.save()  # Save writes the original file, without asking where
    assert project_to_dict(load_project(saved_project)) == edited
    assert not doc.is_modified() and not file.exists() and registered() == []


# ---------------------------------------------------------------------- offering
def test_restoring_an_unsaved_project_keeps_it_unsaved_and_its_uid(window, qtbot, dialogs):
    file, expected = leave_recovery(None)
    uid = json.loads(file.read_text(encoding="utf-8"))["uid"]
    dialogs.replies.append(B.Yes)
    offer_recovery(window)
    assert "never saved" in dialogs.texts[0]
    assert project_to_dict(window.document.project) == expected
    assert window.document.is_modified() and window.document.path is None
    if uid is not None:
        assert window.document.uid == uid
    assert window.autosaver.file == file and writer_alive(file)  # this window owns it now
    with qtbot.waitSignal(window.autosaver.saved) as blocker:
        add_relu(window, "after the restore")
    assert blocker.args[0] == file and "after the restore" in {
        n.name for n in read_recovery(file).project.graph.nodes.values()
    }


def test_discard_deletes_the_recovery_file(window, dialogs, saved_project):
    file, _ = leave_recovery(saved_project)
    dialogs.replies.append(B.Discard)
    offer_recovery(window)
    assert len(dialogs.texts) == 1
    assert not file.exists() and registered() == [] and window.is_start_state()


def test_later_keeps_it_for_the_next_start_and_asks_once_a_session(make_window, qtbot, dialogs, saved_project):
    file, expected = leave_recovery(saved_project)
    w = make_window()
    offer_recovery(w)  # answered Later
    offer_recovery(w)
    assert len(dialogs.texts) == 1 and file.exists() and registered() == [str(file)]
    assert w.open_path(saved_project)  # opening the project does not ask again this session either
    QApplication.processEvents()
    assert len(dialogs.texts) == 1
    other = edit_and_wait(qtbot, w, "edited after Later")  # the kept file is never overwritten
    assert other.parent == recovery_dir() and project_to_dict(read_recovery(file).project) == expected
    dialogs.replies.append(B.Yes)
    offer_recovery(make_window())  # the next start
    assert len(dialogs.texts) == 2


def test_opening_a_project_with_a_recovery_file_beside_it_offers_it(window, qtbot, dialogs, saved_project):
    file, expected = leave_recovery(saved_project)
    dialogs.replies.append(B.Yes)
    assert window.open_path(saved_project)
    qtbot.waitUntil(lambda: window.document.is_modified())
    assert len(dialogs.texts) == 1
    assert project_to_dict(window.document.project) == expected and window.document.path == saved_project
    assert window.autosaver.file == file  # this window writes and deletes it from now on


def test_a_recovery_file_whose_writer_is_alive_is_not_offered(window, dialogs, saved_project):
    file, _ = leave_recovery(saved_project)
    fd = autosave._hold_lock(file)  # as another running window holds it
    assert fd is not None
    try:
        assert writer_alive(file)
        offer_recovery(window)
        assert window.open_path(saved_project)
        QApplication.processEvents()
        assert dialogs.texts == [] and file.exists()
    finally:
        autosave._release_lock(file, fd)
    assert not writer_alive(file)


@pytest.mark.parametrize(
    "content",
    [
        b'{"format": "net-designer-recovery", "version": 1, "project": {"format": "net-de',  # truncated
        b"\xff\xfe not text",
        (
            b'{"format": "net-designer-recovery", "version": 1, "changed_at": "2024-01-01T09:41:00",'
            b' "project": {"format": "net-designer-project", "version": 1, "graph": {"nodes": [{"id": 3}]}}}'
        ),
        b'{"format": "something else"}',
    ],
    ids=["truncated", "not-text", "bad-project", "not-a-recovery-file"],
)
def test_a_damaged_recovery_file_is_set_aside_with_a_message(window, dialogs, saved_project, content):
    good, _ = leave_recovery(None)
    bad = recovery_dir() / "0123456789abcdef.json"
    bad.write_bytes(content)
    offer_recovery(window)  # answered Later
    message = window.statusBar().currentMessage()
    assert "could not be read" in message and "0123456789abcdef.json" in message
    assert not bad.exists() and len(list(recovery_dir().glob("0123456789abcdef.json.*.damaged"))) == 1
    assert len(dialogs.texts) == 1 and "“LeNet-5”" in dialogs.texts[0]
    assert good.exists() and registered() == [str(good)]  # the good one is still offered, and kept


def test_the_project_name_is_shown_as_plain_text(window, dialogs, saved_project):
    project = load_template("lenet5")
    project.name = "<b>bold</b> &amp;"
    leave_recovery(saved_project, project=project)
    offer_recovery(window)
    assert "“<b>bold</b> &amp;”" in dialogs.texts[0] and dialogs.formats == [Qt.TextFormat.PlainText]
