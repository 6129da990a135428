"""Explore's computations off the window's thread: plain data in, plain data out, no Qt object there.

Top patches and Dream run in a plain Python thread; every Qt object is made, used and freed in
the window's thread, results arrive there, and no garbage collection runs in the worker (one
could free a Qt object from the window's garbage there). Rapid requests, a new run arriving and
the view closing mid-computation all end cleanly, and a failing computation says why in the view.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pyqtgraph as pg
import pytest
import torch
from PySide6.QtCore import QObject, QSettings
from PySide6.QtWidgets import QApplication
from shiboken6 import Shiboken

from designer import theme
from designer import workers
from designer.insight.explore import TOP, ExploreView, running_workers
from designer.training.runs import RunEntry
from engine.probes import explore  # NOTE: the view looks its computations up here when asked for one
from engine.probes.explore import Dream, TopPatches
from engine.project import project_from_dict, project_to_dict
from engine.training.events import Finished
from engine.training.runs import RunRecord
from engine.training.trainer import Trainer
from tests.designer.conftest import small_cnn

TIMEOUT = 60_000
CONV1, CONV2 = "n2", "n5"  # in the LeNet-5 template


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


@pytest.fixture(scope="module")
def trained():
    """LeNet-5 trained for an epoch on 64 shape images: the project and its trained state_dict."""
    project = small_cnn(samples=64, epochs=1, every_batches=1000)
    project.probes.layer = None
    trainer = Trainer(project, device="cpu")
    events = list(trainer.events())
    assert isinstance(events[-1], Finished), events[-1]
    return project, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def entry_for(project, weights, label: str = "Run 1") -> RunEntry:
    """A run entry as the controller records one (snapshot + trained state_dict)."""
    return RunEntry(RunRecord(project.name, project_to_dict(project), [], {}), label=label, weights=weights)


def qt_objects_outside(thread_owner) -> list[str]:
    """Names of the live QObjects whose thread is not ``thread_owner``'s."""
    home = thread_owner.thread()
    out = []
    for obj in Shiboken.getAllValidWrappers():
        if isinstance(obj, QObject) and Shiboken.isValid(obj) and obj.thread() != home:
            out.append(type(obj).__name__)
    return out


def test_the_work_runs_off_the_window_thread_with_no_qt_object_and_the_result_arrives_on_it(
        panel, qtbot, monkeypatch, trained):
    view = panel.explore
    panel.end_run(entry_for(*trained))
    window = threading.get_ident()
    worked, qt_made, ended_in, collected_in = [], [], [], []
    real_top, real_text_init, real_qobject_init = explore.top_patches, pg.TextItem.__init__, QObject.__init__

    def top(*args, **kwargs):
        worked.append((threading.get_ident(), threading.current_thread().name))
        # NOTE: enough new containers to set off the collector several times, were it on in this thread.
        junk = [[i] for i in range(20_000)]
        assert len(junk) == 20_000
        return real_top(*args, **kwargs)

    def text_init(self, *args, **kwargs):
        qt_made.append(threading.get_ident())
        real_text_init(self, *args, **kwargs)

    def qobject_init(self, *args, **kwargs):
        qt_made.append(threading.get_ident())
        real_qobject_init(self, *args, **kwargs)

    def on_collect(phase, info):
        if phase == "start":
            collected_in.append(threading.get_ident())

    monkeypatch.setattr(explore, "top_patches", top)
    monkeypatch.setattr(pg.TextItem, "__init__", text_init)
    monkeypatch.setattr(QObject, "__init__", qobject_init)
    view.ended.connect(lambda what: ended_in.append((threading.get_ident(), what)))
    view.channel.setValue(2)
    gc.callbacks.append(on_collect)
    try:
        with qtbot.waitSignal(view.ended, timeout=TIMEOUT):
            assert view.find_patches() and view.is_busy()
    finally:
        gc.callbacks.remove(on_collect)

    [(worker, name)] = worked
    assert worker != window and name.startswith("explore-")
    assert ended_in == [(window, "patches")] and not view.is_busy() and view.busy.isHidden()
    assert isinstance(view.result, TopPatches) and view.result.unit.index == 2
    assert len(qt_made) >= TOP and set(qt_made) == {window}  # the captions, made as the result was drawn
    assert worker not in collected_in
    assert qt_objects_outside(view) == []
    assert not running_workers() and gc.isenabled()


def test_twenty_rapid_requests_with_new_runs_and_switches_end_cleanly(panel, qtbot, trained):
    project, weights = trained
    view = panel.explore
    panel.end_run(entry_for(project, weights))
    view.steps.setValue(5)
    outcomes: list[str] = []
    view.ended.connect(outcomes.append)

    def kind(i: int) -> str:
        return "patches" if i % 2 == 0 else "dream"

    def request(i: int) -> None:
        assert (view.find_patches if kind(i) == "patches" else view.dream)()

    def wait_for(count: int) -> None:
        qtbot.waitUntil(lambda: len(outcomes) == count and not view.is_busy(), timeout=TIMEOUT)

    runs = 1
    for s in range(0, 20, 4):
        request(s)  # runs
        if s % 8 == 0:
            request(s + 1)  # waits for the one running
            runs += 1
            panel.begin_run()  # a new run starts: the waiting request is dropped ...
            panel.end_run(entry_for(project, weights, f"Run {runs}"))  # ... and the running one is outdated
        else:
            view.channel.setValue(s % 6)
            request(s + 1)  # waits, and then is replaced by the next request: it never runs
            assert view.is_busy() and "starts when the computation now running ends" in view.message.text()
        view.show_block(CONV1 if s % 8 else CONV2)
        view.channel.setValue(s % 5)
        request(s + 2)
        wait_for(s + 3)
        assert outcomes[s:] == ["outdated", "outdated", kind(s + 2)]
        unit = view.result.unit
        assert (unit.node_id, unit.index) == (view.node_id, s % 5)
        view.channel.setValue(1)
        request(s + 3)
        wait_for(s + 4)
        assert outcomes[-1] == kind(s + 3) and view.result.unit.index == 1
    assert len(outcomes) == 20 and outcomes.count("outdated") == 10
    assert isinstance(view.result, Dream) and np.isfinite(view.result.image).all()
    assert view.message.isHidden() and view.busy.isHidden() and view.entry.name == f"Run {runs}"
    assert not running_workers() and gc.isenabled()


def test_closing_the_window_while_one_runs_and_one_waits(panel, qtbot, trained):
    view = panel.explore
    panel.end_run(entry_for(*trained))
    outcomes: list[str] = []
    view.ended.connect(outcomes.append)
    assert view.find_patches() and view.dream()
    panel.close()
    panel.shutdown()  # NOTE: what the main window does as it closes
    assert outcomes == ["outdated", "outdated"] and not view.is_busy() and not running_workers()
    panel.shutdown()
    assert len(outcomes) == 2
    panel.show()
    with qtbot.waitSignal(view.ended, timeout=TIMEOUT) as ended:
        assert view.find_patches()
    assert ended.args == ["patches"] and len(view.result.crops) == TOP


def test_a_view_deleted_while_it_computes_leaves_nothing_behind(qtbot, monkeypatch, trained):
    view = ExploreView()
    view.set_run(entry_for(*trained))
    release = threading.Event()
    real_dream = explore.dream

    def held_dream(*args, **kwargs):
        assert release.wait(TIMEOUT / 1000)  # NOTE: ends only after the view is gone
        return real_dream(*args, **kwargs)

    monkeypatch.setattr(explore, "dream", held_dream)
    ended: list[str] = []
    view.ended.connect(ended.append)
    assert view.dream() and len(running_workers()) == 1
    gone: list[bool] = []
    view.destroyed.connect(lambda: gone.append(True))
    view.deleteLater()
    qtbot.waitUntil(lambda: bool(gone), timeout=TIMEOUT)
    assert len(running_workers()) == 1
    release.set()
    joined: list[int] = []
    workers.WORKERS.joined.connect(joined.append)
    try:
        qtbot.waitUntil(lambda: bool(joined), timeout=TIMEOUT)
    finally:
        workers.WORKERS.joined.disconnect(joined.append)
    assert not running_workers() and gc.isenabled() and ended == []


def test_a_failing_computation_shows_its_error_and_the_view_stays_usable(panel, qtbot, monkeypatch, trained,
                                                                          tmp_path):
    project, weights = trained
    view = panel.explore

    def run(start) -> str:
        with qtbot.waitSignal(view.ended, timeout=TIMEOUT) as ended:
            assert start()
        assert not view.is_busy() and view.busy.isHidden()
        return ended.args[0]

    def error() -> str:
        assert not view.message.isHidden() and view.message.property("role") == "error"
        return view.message.text()

    panel.end_run(entry_for(project, weights))
    real_top = explore.top_patches

    def broken(*args, **kwargs):
        raise RuntimeError("out of luck")

    monkeypatch.setattr(explore, "top_patches", broken)
    assert run(view.find_patches) == "failed"
    assert error() == "The view could not be computed: RuntimeError: out of luck" and view.result is None
    monkeypatch.setattr(explore, "top_patches", real_top)
    assert run(view.find_patches) == "patches" and view.message.isHidden() and len(view.result.crops) == TOP

    monkeypatch.setattr(view, "_draw_dream", broken)
    assert run(view.dream) == "failed" and view.result is None
    assert error() == "The result could not be drawn: RuntimeError: out of luck"
    monkeypatch.undo()

    misfit = dict(weights, **{"conv1.weight": torch.zeros(3, 1, 5, 5)})
    panel.end_run(entry_for(project, misfit, "Run 2"))
    assert run(view.find_patches) == "failed" and "do not fit this network" in error()
    assert run(view.dream) == "failed" and "do not fit this network" in error()

    data = tmp_path / "digits.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((40, 1, 32, 32), dtype=np.float32), y=rng.integers(0, 10, 40))
    moved = project_from_dict(project_to_dict(project), source="<test>")  # the same network, trained on a file
    moved.data.dataset, moved.data.path = "npz", str(data)
    gone = tmp_path / "gone.npz"
    data.rename(gone)  # the data set can no longer be loaded
    panel.end_run(entry_for(moved, weights, "Run 3"))
    assert run(view.find_patches) == "failed" and "digits.npz" in error()
    gone.rename(data)  # it is back
    assert run(view.find_patches) == "patches" and view.result.searched == 40 and view.message.isHidden()
    assert not running_workers()
