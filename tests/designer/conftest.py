"""Designer test fixtures: no test may leave a QThread running."""

from __future__ import annotations

import contextlib

import pytest
from PySide6.QtCore import QEvent, QThread
from PySide6.QtWidgets import QApplication


@pytest.fixture(autouse=True)
def no_thread_left_running(monkeypatch):
    """Fail the test if a QThread it started is still running at its end (and stop that thread).

    Every ``QThread.start`` is recorded; a thread whose C++ object is gone had finished
    (deleting a running QThread aborts the process).
    """
    started: list[QThread] = []
    original = QThread.start

    def start(self, *args, **kwargs):
        started.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    yield started
    app = QApplication.instance()
    if app is not None:
        app.processEvents()
    running = []
    for thread in started:
        try:
            if thread.isRunning():
                running.append(thread)
        except RuntimeError:  # the C++ object was deleted, after it finished
            continue
    for thread in running:
        thread.requestInterruption()
        thread.quit()
        thread.wait(30_000)
    if running:
        names = ", ".join(t.objectName() or "QThread" for t in running)
        pytest.fail(f"the test left {len(running)} QThread(s) running: {names}")


@pytest.fixture(autouse=True)
def no_worker_left():
    """Fail a test that leaves a worker thread of :mod:`designer.workers` running (or the garbage collector off).

    NOTE: those workers are plain Python threads, which the QThread check above cannot see.
    """
    import gc

    from designer import workers

    yield
    left = workers.running_workers()
    for thread in left:
        workers.WORKERS.join(int(thread.name.rsplit("-", 1)[1]))
    assert not left, f"the test left {len(left)} worker thread(s) running"
    assert gc.isenabled(), "the garbage collector was left off"


@pytest.fixture(autouse=True)
def deletions_run_at_the_end():
    """Delete what the test asked Qt to delete later (``deleteLater``: closed windows, documents) when it ends.

    NOTE: ``processEvents`` does not run those deletions; the windows of earlier tests then stayed
    alive, and every later theme change re-styled them all (a window test's setup grew to seconds).
    """
    yield
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def pytest_sessionfinish(session, exitstatus):
    """Drop every Qt object Python still holds while the QApplication exists.

    NOTE: otherwise the interpreter destroys leftover widgets, scenes and the canvas's
    cached fonts after Qt has shut down, and the process can crash on exit.
    """
    import gc

    from designer.canvas import items
    from designer.clipboard import release_clipboard

    from engine.training import remote

    remote.discard_spare()
    app = QApplication.instance()
    if app is None:
        return
    release_clipboard()
    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    items._FONTS.clear()
    items._METRICS.clear()
    gc.collect()
    app.sendPostedEvents(None, 0)
    app.processEvents()
    gc.collect()


@pytest.fixture
def open_windows(qtbot):
    """``open_window(width, height)``: a shown main window; every one is closed (without a prompt) at the end."""
    from designer.main_window import MainWindow

    windows: list = []

    def open_window(width: int = 1280, height: int = 800, autosave_ms: int | None = None):
        w = MainWindow()
        if autosave_ms is not None:
            w.autosaver.delay_ms = autosave_ms
        w.resize(width, height)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield open_window
    for w in windows:
        w.document.undo_stack.setClean()
        w.close()
        w.deleteLater()
    QApplication.processEvents()


@pytest.fixture
def panel(qtbot):
    """An Insight dock on its own, shown; any on-demand computation is waited for at the end."""
    from designer.insight import InsightPanel

    p = InsightPanel()
    p.resize(900, 500)
    qtbot.addWidget(p)
    p.show()
    yield p
    p.shutdown()


def small_cnn(samples: int = 200, epochs: int = 3, every_batches: int = 2):
    """LeNet-5 on a few shape images, CPU, no augmentation: a real CNN run of a few seconds."""
    from engine.templates import load_template

    p = load_template("lenet5")
    p.data.dataset = "shapes"
    p.data.samples = samples
    p.data.augment = {}
    p.training.epochs = epochs
    p.training.batch_size = 32
    p.training.device = "cpu"
    p.probes.every_batches = every_batches
    return p


@contextlib.contextmanager
def training_window(qtbot, project):
    """A shown main window with ``project`` open; on exit any run is stopped and the window closed."""
    from designer.main_window import MainWindow

    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    w.document.replace(project)
    try:
        yield w
    finally:
        w.training.shutdown()
        w.document.undo_stack.setClean()
        w.close()
        w.deleteLater()
        QApplication.processEvents()


@pytest.fixture(autouse=True)
def own_data_folder(tmp_path, monkeypatch):
    """The program's own files (runs of unsaved projects, recovery files) and its settings go to the
    test's folder, never the user's."""
    from PySide6.QtCore import QSettings

    from designer.settings import DATA_ENV

    monkeypatch.setenv(DATA_ENV, str(tmp_path / "net-designer-data"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


@pytest.fixture
def light_window(qtbot):
    """A shown, active main window in the light theme with nothing open; closed without a prompt at the end."""
    from designer import theme
    from designer.main_window import MainWindow

    theme.apply_theme(QApplication.instance(), False)
    w = MainWindow()
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    with qtbot.waitActive(w):
        w.activateWindow()
    yield w
    w.document.undo_stack.setClean()  # NOTE: closed without a prompt
    w.close()
    w.deleteLater()
    QApplication.processEvents()
