"""The window's training: docks, the Train menu and actions, runs and the lock during a run.

:class:`TrainingController` is the one object the main window creates for training.
It turns the open project into a plain snapshot when Train is pressed, starts a
:class:`~designer.training.worker.TrainingSession`, feeds the dashboard, keeps every
run in the runs panel, and locks editing (canvas, inspector, setup, undo, opening
another project) until the run has ended; while it is paused, the settings it can take on
open again (:mod:`designer.training.pause_edit`)::

    win.training.start(epochs=3)           # programmatic Train; returns the session
    win.training.wait(60_000)              # spin the event loop until the run has ended
    win.training.last_session.result       # its Finished event (test metrics, history)
    win.training.cross_validate(5)         # k-fold cross-validation (Cross-validate…); asks for k when None
    win.training.sweep(choice)             # a sweep (Sweep…: a SweepChoice); shows the dialog when None
    win.training.start_from_weights(entry) # a new run from a run's (or a checkpoint file's) weights; asks when None
"""

from __future__ import annotations

import copy
import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QInputDialog,
    QMessageBox,
    QScrollArea,
    QStyle,
    QWidget,
)

from designer.canvas.levels import shown_level
from designer.insight import InsightPanel
from designer.plaintext import as_plain
from designer.settings import data_dir
from designer.workers import WORKERS, Job, next_number
from designer.training.config_panel import TrainingConfigPanel
from designer.training.cv_dialog import ask_folds
from designer.training.dashboard import TrainingDashboard
from designer.training.pause_edit import PauseEditor
from designer.training.preview_dialog import DataPreviewDialog
from designer.training.runs import RunEntry, RunsPanel
from designer.training.worker import TrainingSession
from engine.project import project_to_dict
from engine.training import remote
from engine.training.events import EarlyStopped, EpochDone, Finished, Started
from engine.tasks import main_metric
from engine.errors import NetDesignerError
from engine.training.runs import (
    RunRecord,
    find_checkpoint,
    move_runs,
    new_run_dir,
    next_label,
    read_batches,
    read_run,
    runs_dir,
)

if TYPE_CHECKING:  # pragma: no cover
    from designer.main_window import MainWindow

__all__ = ["LOCK_MESSAGE", "TrainingController"]

LOCK_MESSAGE = "Training… the network is locked (Stop with Shift+F5 to edit it)"
#: How often garbage is collected (on the window's thread) while a run trains; see _collect_on_window_thread.
GC_INTERVAL_MS = 2000


class TrainingController(QObject):
    """Training in one main window.

    Signals:
        run_started(): a run was started (the session exists and its thread runs).
        run_ended(str): a run has ended and been recorded, and editing is unlocked again;
            the outcome is "finished", "stopped" or "failed".
    """

    run_started = Signal()
    run_ended = Signal(str)

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.session: TrainingSession | None = None
        self.last_session: TrainingSession | None = None
        self.preview_dialog: DataPreviewDialog | None = None
        self._history: list[dict[str, Any]] = []
        self._snapshot: dict[str, Any] = {}
        self._base_dir = None  # the folder of the project that trained (for data given by a relative path)
        self._run_name = ""
        self._early_stop: EarlyStopped | None = None
        self._started_info: Started | None = None
        self._continuing: RunEntry | None = None
        self._replaced_run: TrainingSession | None = None  # a run stopping because its project was replaced
        self._insight_of: Path | None = None  # the stored run whose views Insight shows
        self._replay_job: Job | None = None
        WORKERS.joined.connect(self._on_worker_joined)
        self._gc_timer = QTimer(self)
        self._gc_timer.setInterval(GC_INTERVAL_MS)
        self._gc_timer.timeout.connect(lambda: gc.collect())

        self.dashboard = TrainingDashboard()
        self.config_panel = TrainingConfigPanel(win.document)
        self.runs = RunsPanel()
        self.insight = InsightPanel()
        self.probe_layer: str | None = None  # the block clicked last: its activations are shown
        self.cam_layer: str | None = None  # the block Grad-CAM weighs (None: the default one)
        self.cam_class: int | None = None  # the class the maps explain (None: the predicted one)
        self._build_docks()
        self._build_actions()
        self.dashboard.set_actions(self.train_action, self.pause_action, self.stop_action)
        self.pause_edit = PauseEditor(self)  # NOTE: what a paused run lets a person change
        self.config_panel.preview_requested.connect(self.preview_data)
        self.runs.message.connect(win.show_message)
        self.runs.continue_requested.connect(lambda entry: self.continue_run(entry))
        self.runs.fork_requested.connect(lambda entry: self.fork_run(entry))
        self.runs.export_requested.connect(lambda entry: self.export_run(entry))
        self.runs.current_changed.connect(self._on_run_selected)
        win.document.path_changed.connect(lambda _path: self._adopt_unsaved_runs())
        self.insight.message.connect(win.show_message)
        self.insight.sample_requested.connect(self._on_probe_sample)
        self.insight.cam_class_requested.connect(self._on_cam_class)
        self.insight.cam_layer_requested.connect(self._on_cam_layer)
        win.scene.node_selection_changed.connect(self._on_canvas_selection)
        win.document.project_replaced.connect(self._on_project_replaced)
        win.document.analysis_changed.connect(
            lambda _analysis: self.insight.fit_to(win.document.graph, win.document.path))
        # NOTE: quitting without closing the window must still end the thread (a running QThread
        # that is destroyed aborts the process).
        QCoreApplication.instance().aboutToQuit.connect(self.shutdown)
        self._update_actions()
        self._show_project_runs()

    # ------------------------------------------------------------------ building
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self.win)
        dock.setObjectName(name)
        dock.setWidget(widget)
        F = QDockWidget.DockWidgetFeature
        dock.setFeatures(F.DockWidgetMovable | F.DockWidgetFloatable | F.DockWidgetClosable)
        self.win.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        """The Training, Runs, Insight and Training setup docks; the window arranges them (see MainWindow.show_layout).

        NOTE: the plots, the runs and the views sit in scroll areas: their smallest sizes (the Insight views'
        is about 700×350 px) would otherwise squeeze the canvas whenever they share the bottom area with it.
        """
        A, win = Qt.DockWidgetArea, self.win
        self.dashboard_dock = self._dock("Training", "training_dock", _scrolled(self.dashboard), A.BottomDockWidgetArea)
        self.runs_dock = self._dock("Runs", "runs_dock", _scrolled(self.runs), A.BottomDockWidgetArea)
        self.setup_dock = self._dock("Training setup", "training_setup_dock", self.config_panel, A.RightDockWidgetArea)
        self.insight_dock = self._dock("Insight", "insight_dock", _scrolled(self.insight), A.BottomDockWidgetArea)
        for dock in (self.dashboard_dock, self.runs_dock, self.insight_dock, self.setup_dock):
            win.view_menu.addAction(dock.toggleViewAction())

    def _action(self, text: str, slot, shortcut: str = "", tip: str = "") -> QAction:
        action = QAction(text, self.win)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            tip = f"{tip} ({shortcut})" if tip else shortcut
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        self.win.addAction(action)  # NOTE: shortcuts work with the menu bar hidden and docks floating
        return action

    def _build_actions(self) -> None:
        self.train_action = self._action("&Train", self.start, "F5", "Train the network on the chosen data")
        self.cross_validate_action = self._action(
            "&Cross-validate…", self.cross_validate, "",
            "k-fold cross-validation: each fold trains a fresh network and validates on a different part of the "
            "training data, so the score's spread shows how much it depends on the split",
        )
        self.sweep_action = self._action(
            "S&weep…", self.sweep, "",
            "Train the network at several values of one or two settings (weight decay, learning rate, a block's "
            "units...), score each by cross-validation or the validation split, and choose the best",
        )
        self.lr_action = self._action(
            "Find &Learning Rate…", self.find_learning_rate, "",
            "Train a copy of the network briefly while the learning rate grows, and pick a rate from the loss curve",
        )
        self.start_from_action = self._action(
            "Start From &Weights…", lambda: self.start_from_weights(), "",
            "Train the network as it is now, starting from the weights of an earlier run or a checkpoint file: "
            "every block whose weights fit keeps them (freeze them to train only a new head), the others start fresh",
        )
        self.pause_action = self._action("&Pause", self.toggle_pause, "F6", "Pause or resume training")
        self.stop_action = self._action("&Stop", self.stop, "Shift+F5", "Stop training after the current batch")
        self.setup_action = self._action("Training &Setup", self.show_setup, "", "Choose the data and how to train")
        self.preview_action = self._action("Preview &Data…", self.preview_data, "", "Show samples of the data with their labels")
        self.open_run_action = self._action("&Open Run Folder…", self.choose_run_folder, "",
                                            "Open a run made by 'python main.py train --out DIR'")
        icon = self.win.style().standardIcon
        P = QStyle.StandardPixmap
        self._icons = {"train": icon(P.SP_MediaPlay), "pause": icon(P.SP_MediaPause), "stop": icon(P.SP_MediaStop)}
        self.train_action.setIcon(self._icons["train"])
        self.pause_action.setIcon(self._icons["pause"])
        self.stop_action.setIcon(self._icons["stop"])
        menu = self.win.menuBar().addMenu("&Train")
        self.win.menuBar().insertMenu(self.win.help_menu.menuAction(), menu)
        for a in (self.train_action, self.start_from_action, self.cross_validate_action, self.sweep_action,
                  self.lr_action, self.pause_action,
                  self.stop_action, None,
                  self.setup_action, self.preview_action, None, self.open_run_action):
            menu.addSeparator() if a is None else menu.addAction(a)
        self.menu = menu

    # ------------------------------------------------------------------ running
    def is_running(self) -> bool:
        return self.session is not None

    def start(
        self, epochs: int | None = None, device: str | None = None, folds: int | None = None, sweep=None,
        init_from: Path | None = None,
    ) -> TrainingSession | None:
        """Train the open project (Train, F5). Returns the session, or None when it cannot start.

        Args:
            epochs: override the project's epochs for this run.
            device: override the project's device ("auto", "cpu" or "cuda").
            folds: k for a k-fold cross-validation instead of one run (see :meth:`cross_validate`).
            sweep: a :class:`~designer.training.sweep_dialog.SweepChoice`: a sweep instead of one run (see :meth:`sweep`).
            init_from: a run folder or checkpoint whose weights the run starts from (see :meth:`start_from_weights`).
        """
        if self.session is not None:
            return self.session
        doc = self.win.document
        analysis = doc.analyze_now()
        self.show_dashboard()
        if not doc.graph.nodes:
            self.dashboard.show_idle("There is no network to train yet: add blocks or start from a template.")
            return None
        if not analysis.valid:
            self.dashboard.show_idle(_why_not_trainable(analysis))
            return None
        snapshot = project_to_dict(doc.project)
        if self.probe_layer in doc.graph.nodes and _probe_able(doc.graph.nodes[self.probe_layer]):
            snapshot["probes"]["layer"] = self.probe_layer
        if self.cam_layer in doc.graph.nodes:
            snapshot["probes"]["cam_layer"] = self.cam_layer
        if self.cam_class is not None:
            snapshot["probes"]["class_index"] = self.cam_class
        return self._launch(snapshot, epochs=epochs, device=device, folds=folds,
                            metric=main_metric(doc.graph), sweep=sweep, init_from=init_from)

    def _launch(
        self, snapshot: dict[str, Any], *, epochs: int | None = None, device: str | None = None,
        folds: int | None = None, metric: str | None = None, resume_from: Path | None = None,
        run_dir: Path | None = None, continuing: RunEntry | None = None, sweep=None, init_from: Path | None = None,
    ) -> TrainingSession | None:
        """Start a session training ``snapshot`` into a run folder (a new one in the project's runs folder,
        or ``run_dir`` to go on with a run there)."""
        doc = self.win.document
        self._snapshot = snapshot
        self._history, self._early_stop, self._started_info = [], None, None
        self._continuing = continuing
        label = continuing.name if continuing is not None else ""
        if run_dir is None:
            try:
                root = self.runs_folder()
                label = next_label(root)
                run_dir = new_run_dir(root)
            except (OSError, NetDesignerError) as exc:
                self.dashboard.show_idle(f"The run's folder could not be made, so nothing was trained: {exc}")
                return None
        self._run_name = label
        self._base_dir = base_dir = doc.path.parent if doc.path is not None else None
        if sweep is not None:
            folds = sweep.folds
        session = TrainingSession(snapshot, base_dir=base_dir, epochs=epochs, device=device, folds=folds,
                                  run_dir=run_dir, resume_from=resume_from, label=label, parent=self,
                                  init_from=init_from,
                                  **(sweep.request() if sweep is not None else {}))
        session.started.connect(self._on_started)
        session.batches_done.connect(self.dashboard.on_batches_done)
        session.epoch_done.connect(self._on_epoch_done)
        session.early_stopped.connect(self._on_early_stopped)
        session.finished.connect(self.dashboard.on_finished)
        session.cross_validated.connect(self.dashboard.on_cross_validated)
        session.failed.connect(self.dashboard.on_failed)
        session.fold_done.connect(self.dashboard.on_fold_done)
        session.point_started.connect(self.dashboard.on_point_started)
        session.point_done.connect(self.dashboard.on_point_done)
        session.sweep_done.connect(self.dashboard.on_sweep_done)
        session.paused_changed.connect(self._on_paused)
        session.ended.connect(self._on_ended)
        session.probes_done.connect(self.insight.on_probes_done)
        session.insight_done.connect(self.insight.on_insight_done)
        self.pause_edit.attach(session)
        self.insight.begin_run()
        self.win.show_layout("training")  # NOTE: the plots and the Insight views side by side while it trains
        self.show_dashboard()
        self._collect_on_window_thread(True)
        self.session = self.last_session = session
        self._lock(True)
        self.runs.set_busy(True)
        total = epochs or int(snapshot.get("training", {}).get("epochs") or 1)
        self.dashboard.begin_run(epochs=total, main_metric=metric)
        self._update_actions()
        session.start()
        what = f"{folds}-fold cross-validation" if folds else (f"{label}: training" if label else "Training")
        self.win.show_message(f"{label}: sweep started" if sweep is not None else f"{what} started")
        self.run_started.emit()
        return session

    def _collect_on_window_thread(self, running: bool) -> None:
        """During a run, garbage is collected on the window's thread only, on a timer.

        NOTE: Python collects in whichever thread happens to allocate, and the worker thread that
        relays the run's events allocates for each one: a collection there could free a Qt object of
        the window's from the wrong thread. So automatic collection is off for the run, and a timer
        here collects instead. Objects made before the run are set aside (frozen) for its length, so
        a collection scans only the run's own objects (one over the whole window took 50-180 ms and
        stalled the event loop).
        """
        if running:
            gc.collect()
            gc.freeze()
            self._gc_was_enabled = gc.isenabled()
            gc.disable()
            self._gc_timer.start()
        else:
            self._gc_timer.stop()
            gc.unfreeze()
            if getattr(self, "_gc_was_enabled", True):
                gc.enable()

    # ------------------------------------------------------------------ runs on disk
    def runs_folder(self) -> Path:
        """Where the open project's runs live: beside its file, or in the program's folder until it is saved."""
        doc = self.win.document
        if doc.path is not None:
            return runs_dir(doc.path)
        return data_dir() / "unsaved-runs" / doc.uid

    def continue_run(self, entry: RunEntry, more: int | None = None) -> TrainingSession | None:
        """Train ``entry``'s run ``more`` epochs (asks when None) from its last checkpoint, in its own folder."""
        if self.session is not None or entry.path is None:
            return None
        done = max((r.get("epoch", 0) for r in entry.history), default=0)
        if more is None:
            more, ok = QInputDialog.getInt(self.win, "Continue training", as_plain(f"{entry.name} has trained {done} "
                                           "epoch(s). Train how many more?"), 10, 1, 100_000)
            if not ok:
                return None
        project = entry.record.project
        epochs = done + int(more)
        return self._launch(project, epochs=epochs, resume_from=entry.path / "last.pt", run_dir=entry.path,
                            metric=self._metric_of(project), continuing=entry)

    def fork_run(self, entry: RunEntry, epoch: int | None = None, epochs: int | None = None) -> TrainingSession | None:
        """A new run from ``entry``'s checkpoint of ``epoch`` with the Training setup's settings (asks when None)."""
        if self.session is not None or entry.path is None:
            return None
        training = self.win.document.project.training.to_dict()
        if epoch is None or epochs is None:
            from designer.training.fork_dialog import ask_fork

            answer = ask_fork(entry, training, self.win)
            if answer is None:
                return None
            epoch, epochs = answer
        try:
            checkpoint = find_checkpoint(entry.path, epoch=epoch)
        except NetDesignerError as exc:
            QMessageBox.warning(self.win, "Fork run", as_plain(exc))
            return None
        snapshot = dict(entry.record.project)
        snapshot["training"] = {**training, "epochs": int(epochs)}
        return self._launch(snapshot, epochs=int(epochs), resume_from=checkpoint, metric=self._metric_of(snapshot))

    def export_run(self, entry: RunEntry | None = None) -> list[Path]:
        """File → Export or a run's Export…: the network as PyTorch code with a run's trained weights."""
        return self.win.files.export_code(run=entry)

    def _metric_of(self, snapshot: dict[str, Any]) -> str | None:
        from engine.project import project_from_dict

        try:
            return main_metric(project_from_dict(snapshot, source="<run>").graph)
        except NetDesignerError:
            return None

    def _show_project_runs(self) -> None:
        problems = self.runs.show_runs_in(self.runs_folder())
        if problems:
            self.win.show_message(f"{len(problems)} run folder(s) could not be read (see Runs)")
        latest = next((e for e in reversed(self.runs.entries) if e.path is not None), None)
        if latest is not None and latest.load_weights() is not None:
            self.insight.explore.set_run(latest, self._project_dir())

    def _project_dir(self) -> Path | None:
        path = self.win.document.path
        return path.parent if path is not None else None

    def _adopt_unsaved_runs(self) -> None:
        """The project was saved for the first time: its runs move from the program's folder to beside it."""
        doc = self.win.document
        if doc.path is None or self.session is not None:
            return
        old = data_dir() / "unsaved-runs" / doc.uid
        if old.is_dir():
            try:
                move_runs(old, runs_dir(doc.path))
            except OSError as exc:
                self.win.show_message(f"The runs could not be moved beside the project: {exc}")
        self._show_project_runs()

    def cross_validate(self, k: int | None = None, epochs: int | None = None) -> TrainingSession | None:
        """k-fold cross-validation of the open project (Cross-validate…); asks for k when it is None.

        Returns the session, or None when it was cancelled or cannot start.
        """
        if self.session is not None:
            return self.session
        if k is None:
            k = ask_folds(self.win.document.project.data, self.win)
            if k is None:
                return None
        return self.start(epochs=epochs, folds=k)

    def sweep(self, choice=None) -> TrainingSession | None:
        """Train → Sweep…: the project at every point of a grid of settings (a ``SweepChoice``; asks when None).

        Returns the session, or None when it was cancelled or cannot start.
        """
        if self.session is not None:
            return self.session
        if choice is None:
            from designer.training.sweep_dialog import ask_sweep

            choice = ask_sweep(self.win.document.project, self.win)
            if choice is None:
                return None
        return self.start(epochs=choice.epochs, sweep=choice)

    def start_from_weights(self, source: RunEntry | str | Path | None = None,
                           epochs: int | None = None) -> TrainingSession | None:
        """Train → Start From Weights…: a new run of the open project from a run's or a checkpoint's weights.

        ``source`` is a run of the Runs dock or a run folder, checkpoint or weights file; None asks for one.
        The run keeps every block whose weights fit (see :mod:`engine.training.transfer`); the dashboard
        names them when it starts. Returns the session, or None when it was cancelled or cannot start.
        """
        if self.session is not None:
            return None
        if source is None:
            source = self._ask_weights()
            if source is None:
                return None
        path = source.path if isinstance(source, RunEntry) else Path(source)
        if path is None:
            self.win.show_message(f"{source.name} has no folder on disk, so no weights to start from")
            return None
        try:
            find_checkpoint(path, which="best")
        except NetDesignerError as exc:
            QMessageBox.warning(self.win, "Start from weights", as_plain(exc))
            return None
        # NOTE: the pause editor words Started.transfer on the dashboard; this names the parent in it
        self.pause_edit._fork_of = source.name if isinstance(source, RunEntry) else path.name
        session = self.start(epochs=epochs, init_from=path)
        if session is None:
            self.pause_edit._fork_of = ""
        return session

    def _ask_weights(self) -> RunEntry | Path | None:
        """A run of the project's Runs, or a checkpoint file (chosen in a file dialog); None when cancelled."""
        runs = [e for e in self.runs.entries if e.path is not None]
        other = "A checkpoint or weights file…"
        items = [f"{e.name} ({e.path.name})" for e in runs] + [other]
        chosen, ok = QInputDialog.getItem(self.win, "Start from weights", "Start a new run of this network from "
                                          "the weights of:", items, max(len(items) - 2, 0), False)
        if not ok:
            return None
        if chosen != other:
            return runs[items.index(chosen)]
        start = str(self.runs_folder() if self.runs_folder().is_dir() else (self._project_dir() or Path.home()))
        path, _ = QFileDialog.getOpenFileName(self.win, "Choose a checkpoint or weights file", start,
                                              "PyTorch weights (*.pt *.pth);;All files (*)")
        return Path(path) if path else None

    def find_learning_rate(self):
        """Train → Find learning rate…: the search on a copy of the network, in a dialog (returned, shown)."""
        from designer.training.lr_dialog import LrFinderDialog

        doc = self.win.document
        if self.session is not None or not doc.analyze_now().valid or not doc.graph.nodes:
            self.win.show_message("Find learning rate needs a valid network and no run training")
            return None
        dialog = LrFinderDialog(doc, self._project_dir(), parent=self.win)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()
            self.dashboard.set_message("Stopping after this batch…")

    def pause(self) -> None:
        if self.session is not None:
            self.session.pause()

    def resume(self) -> None:
        """Resume a paused run with the settings changed while it was paused (see designer.training.pause_edit)."""
        if self.session is not None:
            self.pause_edit.resume()

    def toggle_pause(self) -> None:
        """Pause or resume (F6); the button changes when the loop acknowledges it (see _on_paused)."""
        if self.session is None:
            return
        if self.session.is_paused():
            self.pause_edit.resume()
        else:
            self.session.pause()

    def wait(self, timeout_ms: int = 120_000) -> bool:
        """Run the event loop until the current run has ended (or the timeout). True when it ended."""
        if self.session is None:
            return True
        loop = QEventLoop()
        self.run_ended.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        self.run_ended.disconnect(loop.quit)
        return self.session is None

    def shutdown(self) -> None:
        """Stop any run and wait for its thread and any Insight computation (the window is closing)."""
        self.pause_edit.shutdown()
        if self.session is not None:
            self.session.shutdown()
        if self._replay_job is not None:
            WORKERS.join(self._replay_job.number)
        self.insight.shutdown()

    # ------------------------------------------------------------------ reactions
    def _on_started(self, ev: Started) -> None:
        self._started_info = ev
        self.dashboard.on_started(ev)
        if ev.history:  # NOTE: a continued or forked run: its curves start with the epochs before
            self._history = [dict(r) for r in ev.history]
            losses = read_batches(Path(ev.run_dir) / "batches.f32") if ev.run_dir else None
            self.dashboard.show_history(list(ev.history), losses)

    def _on_epoch_done(self, ev: EpochDone) -> None:
        self._history.append(ev.row())
        self.dashboard.on_epoch_done(ev)

    def _on_early_stopped(self, ev: EarlyStopped) -> None:
        self._early_stop = ev
        self.dashboard.on_early_stopped(ev)

    def _on_canvas_selection(self, ids: list[str]) -> None:
        """One block clicked: its activations are shown (from the next probe run, or the next Train)."""
        nodes = self.win.document.graph.nodes
        if len(ids) != 1 or ids[0] not in nodes or shown_level(self.win.view) != "":
            return  # NOTE: inside a unit the ids are the unit's own, not the network's: they may name another block
        node = nodes[ids[0]]
        able = _probe_able(node)
        if able:
            self.probe_layer = node.id
            if self.session is not None:
                self.session.set_probe_wish("layer", self.probe_layer)
        self.insight.show_block(node.name, able, self.session is not None, node.id)

    def _on_probe_sample(self, sample: int) -> None:
        if self.session is not None:
            self.session.set_probe_wish("sample", sample)

    def _on_cam_class(self, class_index: int | None) -> None:
        """The class the maps explain (None: each image's predicted class), now and for the next runs."""
        self.cam_class = class_index
        if self.session is not None:
            self.session.set_probe_wish("class_index", class_index)

    def _on_cam_layer(self, use_selected: bool) -> None:
        """Grad-CAM weighs the block selected on the canvas (or the default one), now and for the next runs."""
        cam = self.insight.cam
        when = "from the next probe run" if self.session is not None else "when training starts"
        if not use_selected:
            self.cam_layer = None
            cam.note(f"Grad-CAM will weigh the default block (the last spatial one before the class output) {when}.")
        else:
            doc = self.win.document
            ids = self.win.scene.selected_node_ids()
            if len(ids) != 1 or ids[0] not in doc.graph.nodes:
                cam.note("Click one block on the canvas first, then press 'Use selected block'.")
                return
            node = doc.graph.nodes[ids[0]]
            info = doc.analysis.nodes.get(node.id)
            shape = info.out_shape if info is not None else None
            if not _probe_able(node) or shape is None or len(shape) != 3:
                cam.note(f"'{node.name}' has no feature maps for Grad-CAM: pick a convolution, activation "
                         "or pooling block (channels×height×width) that feeds the class output.")
                return
            self.cam_layer = node.id
            cam.note(f"Grad-CAM will weigh '{node.name}' {when}.")
        if self.session is not None:
            self.session.set_probe_wish("cam_layer", self.cam_layer)

    def _on_paused(self, paused: bool) -> None:
        self.dashboard.set_paused(paused)
        if not paused and self.session is not None and not self.session.is_stopping():
            self.dashboard.set_message("Training…")
        self._update_actions()
        self.pause_edit.on_paused(paused)

    def _on_ended(self, outcome: str) -> None:
        self._collect_on_window_thread(False)
        session, self.session = self.session, None
        self.runs.set_busy(False)
        entry = None
        kept = session is not None and session.run_dir is not None and (session.run_dir / "summary.json").is_file()
        # NOTE: a run of a project that was replaced while it stopped stays in its own project's runs folder;
        # listing it, or giving it to Explore, would show it as the open project's
        replaced, self._replaced_run = session is not None and session is self._replaced_run, None
        if replaced:
            self.dashboard.show_empty()
        elif session is not None and (self._started_info is not None or (session.sweep is not None and kept)):
            self._insight_of = session.run_dir  # NOTE: Insight shows this run's live results already
            entry = self._record(session, outcome)
        elif session is not None and session.run_dir is not None:
            _remove_empty(session.run_dir)
        self.insight.end_run(entry, self._base_dir)
        self._lock(False)
        self._update_actions()
        what = "Cross-validation" if session is not None and session.folds else "Training"
        if session is not None and session.sweep is not None:
            what = "Sweep"
            if entry is not None:
                self.runs_dock.show()
                self.runs_dock.raise_()  # NOTE: the sweep's results view is there, with the sweep selected
        self.win.show_message(f"{what} {outcome if outcome in ('finished', 'stopped') else 'failed'}")
        remote.prestart()  # NOTE: the next run's process starts now, while the person looks at this one
        if self.win.document.path is not None and (data_dir() / "unsaved-runs" / self.win.document.uid).is_dir():
            self._adopt_unsaved_runs()  # NOTE: saved during the run: its folder could not move while written
        self.run_ended.emit(outcome)
        self.pause_edit.on_ended()  # NOTE: a network changed while paused: its new run starts now

    def _record(self, session: TrainingSession, outcome: str) -> RunEntry:
        """The ended run as the Runs dock lists it: read back from its folder (in memory when it has none)."""
        result = session.result
        summary = result.summary() if result is not None else {}
        history = getattr(result, "history", None)
        history = [dict(r) for r in history] if history else self._history
        weights = result.weights if isinstance(result, Finished) else None
        if self._early_stop is not None and outcome == "finished":
            outcome = "early stop"
        record = None
        if session.run_dir is not None and (session.run_dir / "summary.json").is_file():
            try:
                record = read_run(session.run_dir)
            except NetDesignerError as exc:
                self.win.show_message(f"The run's folder could not be read back: {exc}")
        if record is None:
            record = RunRecord(str(self._snapshot.get("name") or "Untitled"), self._snapshot, list(history), summary,
                               label=self._run_name, status=outcome if outcome != "failed" else "failed")
        entry = RunEntry.from_record(record, outcome=outcome if record.path is None else None)
        entry.label = entry.label or self._run_name
        entry.weights, entry.batch_losses = weights, self.dashboard.batch.y.copy()
        entry.message = session.message or entry.message
        continuing, self._continuing = self._continuing, None
        if continuing is not None:
            return self.runs.replace_run(continuing, entry)
        return self.runs.add_run(entry)

    def _on_run_selected(self, entry: RunEntry | None) -> None:
        """A run picked in the Runs dock is the one Explore works on and Insight shows (from its stored weights)."""
        if entry is None or self.session is not None or entry.load_weights() is None:
            return
        self.insight.explore.set_run(entry, self._project_dir())
        if entry.path is not None and entry.path != self._insight_of:
            self._replay(entry)

    def _replay(self, entry: RunEntry) -> None:
        """Compute ``entry``'s Insight again from its stored weights, in a worker thread (see designer.workers)."""
        from engine.probes.replay import replay

        snapshot, weights, base = copy.deepcopy(entry.record.project), entry.weights, self._project_dir()
        epoch = entry.history[-1].get("epoch") if entry.history else None
        self._insight_of = entry.path
        job = Job(next_number(), "insight", entry, lambda: replay(snapshot, weights, base, epoch), kind="insight")
        self._replay_job = job
        WORKERS.start(job)

    def _on_worker_joined(self, number: int) -> None:
        job = self._replay_job
        if job is None or job.number != number:
            return
        self._replay_job = None
        status, value = job.outcome or ("failed", "no result")
        if self.session is not None or job.entry.path != self._insight_of:
            return  # NOTE: a run started, or another run was picked, while it computed
        if status == "done":
            self.insight.show_stored(job.entry.name, value)
        else:
            self.insight.status.setText(f"{job.entry.name}: its views could not be computed again: {value}")

    def _on_project_replaced(self) -> None:
        """Another project (or New): no panel keeps the previous project's run, its failure or its patches."""
        if self.session is not None:
            self.stop()
            # NOTE: its last probe runs may still arrive while it stops: they are the previous project's
            self.session.probes_done.disconnect(self.insight.on_probes_done)
            self.session.insight_done.disconnect(self.insight.on_insight_done)
            self._replaced_run = self.session
            self.win.show_message("Another project was opened: the training run was stopped")
        else:
            self.dashboard.show_empty()
        # NOTE: block ids repeat across projects ("n5"): the previous project's choices would name other blocks
        self.probe_layer = self.cam_layer = self.cam_class = None
        self._insight_of = None
        self.insight.forget()
        self.insight.explore.forget_run()
        self._show_project_runs()

    # ------------------------------------------------------------------ the lock
    def _lock(self, on: bool) -> None:
        """Make the network and its settings read-only during a run (and editable after)."""
        win, stack = self.win, self.win.document.undo_stack
        win.view.set_read_only(on, LOCK_MESSAGE if on else None)
        for widget in (win.inspector, self.config_panel, win.undo_view):
            widget.setEnabled(not on)
        win.act.undo.setEnabled(not on and stack.canUndo())
        win.act.redo.setEnabled(not on and stack.canRedo())
        for action in (win.act.new_blank, win.act.new_from_template, win.act.open):
            action.setEnabled(not on)
        win.act.recent_menu.setEnabled(not on)

    def _update_actions(self) -> None:
        running = self.session is not None
        paused = running and self.session.is_paused()
        self.train_action.setEnabled(not running)
        self.cross_validate_action.setEnabled(not running)
        self.sweep_action.setEnabled(not running)
        self.lr_action.setEnabled(not running)
        self.start_from_action.setEnabled(not running)
        self.pause_action.setEnabled(running and self.pause_edit.can_resume())
        self.stop_action.setEnabled(running)
        self.pause_action.setText("&Resume" if paused else "&Pause")
        self.pause_action.setIcon(self._icons["train" if paused else "pause"])

    # ------------------------------------------------------------------ panels
    def show_dashboard(self) -> None:
        self.dashboard_dock.show()
        self.dashboard_dock.raise_()

    def show_insight(self) -> None:
        self.insight_dock.show()
        self.insight_dock.raise_()

    def show_setup(self) -> None:
        self.setup_dock.show()
        self.setup_dock.raise_()

    def preview_data(self) -> DataPreviewDialog:
        """Open the data preview for the project's current data settings."""
        doc = self.win.document
        base_dir = doc.path.parent if doc.path is not None else None
        if self.preview_dialog is not None:
            self.preview_dialog.close()
            self.preview_dialog.deleteLater()
        self.preview_dialog = DataPreviewDialog(doc.project, doc.analysis, base_dir, parent=self.win)
        self.preview_dialog.open()
        return self.preview_dialog

    def choose_run_folder(self) -> None:
        self.runs_dock.show()
        self.runs_dock.raise_()
        self.runs.choose_folder()

    def open_run(self, path) -> RunEntry:
        """Open a CLI run folder into the runs panel (raises NetDesignerError when it is not one)."""
        entry = self.runs.open_folder(path)
        self.runs_dock.show()
        self.runs_dock.raise_()
        return entry


def _why_not_trainable(analysis) -> str:
    """Why Train refuses: the wired blocks' errors first; blocks not connected yet said as such."""
    wired = len(analysis.wired_errors())
    loose = len(analysis.unwired)
    if wired:
        return (f"The network has {wired} error{'s' if wired != 1 else ''}: fix {'them' if wired != 1 else 'it'} "
                "(see Problems) before training.")
    them = "them" if loose != 1 else "it"
    return (f"{loose} block{'s are' if loose != 1 else ' is'} not connected yet: wire {them} into the network "
            f"(or delete {them}) before training.")


def _scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that fits it to the dock and scrolls only below its smallest size."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # NOTE: not empty (the run wrote something) or already gone


def _probe_able(node) -> bool:
    """Whether a block's output can be shown as activations (not the Input, not an output head)."""
    return node.spec.role not in ("input", "head")

