"""Pause → edit → resume in the window.

While a run is paused, the settings it can take on (:mod:`engine.training.live`) are editable: the
learning rate, weight decay, momentum, schedule, batch size, augmentation and early stopping in
the Training setup, a Dropout block's rate in the Inspector. Everything else stays locked and
says why on hover. The edits are the ordinary undoable ones; Undo and Redo reach only the edits
made during the pause. Resume sends what changed since the pause; the run answers with
``Resumed`` (what it applied, marked on the curves) or, for a change it cannot take, with another
``Paused`` that says why: the run stays paused and the fields stay editable.

The network itself cannot change under a running optimizer, so a changed network is a new run.
"Change the network…" (under the training controls while paused) unlocks the canvas and the whole
Inspector; once the network differs from the paused one, Resume waits (undo the change to resume
this run) and "Apply the network change: a new run from these weights" has the paused run write its
weights, stops it and starts a new run with the changed network, which keeps every block whose
parameters still fit. Why a button first, and not an unlocked canvas: most pauses are for a setting
and go on with the same run; with the network locked until asked, a stray drag or Delete cannot
turn Resume into a new run, and the button that unlocks it says what a change will do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from designer.training.commands import SetConfigCommand
from engine.graph import Graph
from engine.project import project_to_dict
from engine.tasks import main_metric
from engine.training.live import DROPOUT_TYPES, KEPT_WEIGHTS, changes_text, live_values

if TYPE_CHECKING:  # pragma: no cover
    from designer.training.controller import TrainingController
    from designer.training.worker import TrainingSession
    from engine.training.events import Paused, Resumed, Started, WeightsKept

__all__ = ["PauseEditor", "network_signature"]

PAUSED_CANVAS = ("Paused: the network is locked. To change it, press “Change the network…” under the training "
                 "controls")
UNDO_LIMIT = "Undo and Redo reach only the changes made while the run is paused"
PAUSED_TEXT = ("Paused. The learning rate, weight decay, momentum, schedule, batch size, augmentation and early "
               "stopping (Training setup) and a Dropout block's rate (Inspector) can change now; Resume (F6) goes "
               "on with them, Stop (Shift+F5) ends the run.")
OFFER_TEXT = "The network itself cannot change in this run; a changed network starts a new run from these weights."
EDITING_TEXT = ("Change the network, then apply it: a new run starts from the paused weights, keeping every block "
                "whose parameters still fit. Undo the changes to resume this run instead.")


def network_signature(graph: Graph) -> tuple:
    """What makes a network another one: its blocks' ids, types and parameters (not a Dropout's rate) and wires.

    Names and positions are left out: they change nothing a run computes.
    """
    nodes = tuple(sorted(
        (nid, n.type, tuple(sorted((k, repr(v)) for k, v in n.params.items()
                                   if not (n.type in DROPOUT_TYPES and k == "p"))))
        for nid, n in graph.nodes.items()
    ))
    edges = tuple(sorted((e.src, e.src_port, e.dst, e.dst_port) for e in graph.edges))
    return nodes, edges


class PauseEditor(QObject):
    """The paused run's editing, for one :class:`~designer.training.controller.TrainingController`.

    The controller calls :meth:`attach` for each session, :meth:`on_paused` when the loop
    acknowledges a pause or a resume, :meth:`resume` for Resume, and :meth:`on_ended` when a run ended.
    """

    def __init__(self, controller: TrainingController) -> None:
        super().__init__(controller)
        self.ctl, self.win = controller, controller.win
        self.active = False  # the run is paused and its settings are being edited
        self.open = False  # the fields are editable (not while a resume or a new run is on its way)
        self.editing_network = False
        self._base = 0  # the undo stack's index at the pause
        self._pushed = False  # an edit was made during the pause (the redo steps after base are the pause's)
        self._sealed = None  # the undo step before the pause, which the pause's edits must not merge into
        self._at_pause: dict[str, Any] = {}
        self._network: tuple | None = None
        self._last_pause: Paused | None = None
        self._resumed_text = ""
        self._fork: tuple[dict[str, Any], Path, str] | None = None  # a new network's snapshot, weights, parent
        self._fork_ready = False  # its weights are written and this run was stopped for it
        self._fork_of = ""  # the parent's label, for the next run's message
        bar = controller.dashboard.pause_bar
        bar.edit_requested.connect(self.edit_network)
        bar.apply_requested.connect(self.apply_network_change)
        self.win.document.undo_stack.indexChanged.connect(self._on_index)

    # ------------------------------------------------------------------ the controller's calls
    def attach(self, session: TrainingSession) -> None:
        """Follow a new session's pauses, resumes and kept weights (after the controller's own slots)."""
        session.paused.connect(self._on_paused_event)
        session.resumed.connect(self._on_resumed)
        session.weights_kept.connect(self._on_weights_kept)
        session.started.connect(self._on_started)

    def on_paused(self, paused: bool) -> None:
        """The loop paused (or went on): open the paused run's settings, or say what it took on."""
        session = self.ctl.session
        if not paused:
            if self._resumed_text:
                self.ctl.dashboard.set_message(self._resumed_text)
            return
        if session is None or session.folds or getattr(session, "sweep", None) is not None or session.is_stopping():
            return  # NOTE: a cross-validation or sweep pauses as before: its runs are made from one project
        refused = self._last_pause.refused if self._last_pause is not None else ""
        forking, self._fork = self._fork, None
        if forking is not None and not refused:
            self._fork = forking
            return
        if not self.active:
            self._begin()
        self._open_fields()
        if forking is not None:  # NOTE: the weights could not be written: the run stays paused, nothing started
            self.ctl.dashboard.set_message(f"No new run was started: {refused}.", "error")
        elif refused:
            self.ctl.dashboard.set_message(f"Not resumed: {refused}. The run stays paused: change it, or undo the "
                                           "change, and Resume again.", "error")
        else:
            self.ctl.dashboard.set_message(PAUSED_TEXT)

    def can_resume(self) -> bool:
        """Resume can continue this run: the network is the paused one."""
        return not self.network_changed()

    def network_changed(self) -> bool:
        return self.active and self._network != network_signature(self.win.document.graph)

    def changes(self) -> dict[str, Any]:
        """The settings changed since the pause: setting -> new value (blocks by id)."""
        now = live_values(project_to_dict(self.win.document.project))
        return {k: v for k, v in now.items() if k in self._at_pause and v != self._at_pause[k]}

    def resume(self) -> None:
        """Resume (F6): send what changed since the pause, and lock the fields until the run answers."""
        session = self.ctl.session
        if session is None:
            return
        if not self.active:
            session.resume()
            return
        if self.network_changed():
            self.ctl.dashboard.set_message("The network changed: apply it as a new run from these weights, or undo "
                                           "the changes to resume this run.", "error")
            return
        changes = self.changes()
        self._close_fields()
        session.resume(changes)

    def on_ended(self) -> None:
        """The run ended (after the controller recorded it): a changed network's new run starts now.

        Not when the person pressed Stop before the weights were written: Stop means stop.
        """
        fork, ready = self._fork, self._fork_ready
        self._fork, self._fork_ready = None, False
        self._end()
        if fork is None or not ready:
            return
        snapshot, weights, parent = fork
        if not weights.is_file():
            self.ctl.dashboard.show_idle("The paused weights were not written, so no new run was started.")
            return
        self._fork_of = parent
        self.ctl._launch(snapshot, init_from=weights, metric=main_metric(self.win.document.graph))

    # ------------------------------------------------------------------ the network
    def edit_network(self) -> None:
        """Change the network… : the canvas and the whole Inspector open for a new run from these weights."""
        if not self.open:
            return
        self.editing_network = True
        self._open_fields()
        self.win.view.setFocus()

    def apply_network_change(self) -> None:
        """A new run with the changed network from the paused weights: they are written, then this run stops."""
        session, doc = self.ctl.session, self.win.document
        if session is None or not self.open or session.run_dir is None or not self.network_changed():
            return
        if not doc.analyze_now().valid:
            self.ctl.dashboard.set_message("The changed network has errors: fix them (see Problems) before it can "
                                           "train.", "error")
            return
        weights = Path(session.run_dir) / KEPT_WEIGHTS
        self._fork = (project_to_dict(doc.project), weights, self.ctl._run_name or session.run_dir.name)
        self._close_fields()
        self.ctl.dashboard.set_message("Keeping the paused weights, then a new run starts with the changed network…")
        session.keep_weights(weights)

    # ------------------------------------------------------------------ the run's answers
    def _on_paused_event(self, ev: Paused) -> None:
        self._last_pause = ev
        self._resumed_text = ""

    def _on_resumed(self, ev: Resumed) -> None:
        if self.open:
            self._close_fields()  # NOTE: resumed by other means than resume(): the run trains, so it is locked
        self.ctl.dashboard.on_resumed(ev)
        self._resumed_text = f"Resumed with {changes_text(ev.changes)}." if ev.changes else ""
        if ev.changes:
            self.win.show_message(self._resumed_text)
        self._end()

    def _on_weights_kept(self, _ev: WeightsKept) -> None:
        session = self.ctl.session
        if self._fork is not None and session is not None and not session.is_stopping():
            self._fork_ready = True
            session.stop()  # NOTE: the new run starts when this one has ended (on_ended)

    def shutdown(self) -> None:
        """The window is closing: a new run waiting for this one to end is not started."""
        self._fork, self._fork_ready = None, False

    def _on_started(self, ev: Started) -> None:
        """Say which blocks a new network kept; mark the changes a continued run made before."""
        if ev.transfer:
            self.ctl.dashboard.set_message(_transfer_text(ev.transfer, self._fork_of))
            self._fork_of = ""
        if ev.history and ev.run_dir:
            self._mark_earlier_changes(Path(ev.run_dir), ev.history[-1].get("epoch"))

    def _mark_earlier_changes(self, folder: Path, last_epoch: Any) -> None:
        from engine.errors import NetDesignerError
        from engine.training.runs import read_run

        try:
            changes = read_run(folder).changes
        except NetDesignerError:
            return
        for change in changes:
            if not isinstance(last_epoch, (int, float)) or change["epoch"] <= last_epoch:
                self.ctl.dashboard.marks.add(change["epoch"], changes_text(change["changes"]))

    # ------------------------------------------------------------------ locks
    def _begin(self) -> None:
        doc = self.win.document
        stack = doc.undo_stack
        self.active, self.editing_network = True, False
        self._base, self._pushed = stack.index(), False
        top = stack.command(stack.index() - 1) if stack.index() > 0 else None
        self._sealed = top if isinstance(top, SetConfigCommand) else None
        if self._sealed is not None:
            self._sealed.sealed = True
        self._at_pause = live_values(project_to_dict(doc.project))
        self._network = network_signature(doc.graph)
        self.win.scene.undo_gate = self._undo_gate

    def _open_fields(self) -> None:
        """The paused run's settings editable (and the whole network, when it is being changed)."""
        win, panel = self.win, self.ctl.config_panel
        self.open = True
        win.view.set_read_only(not self.editing_network, None if self.editing_network else PAUSED_CANVAS)
        win.inspector.setEnabled(True)
        win.inspector.set_live_only(not self.editing_network)
        panel.setEnabled(True)
        panel.set_live_only(True)
        self._refresh_state()

    def _close_fields(self) -> None:
        """Everything locked as during training (a resume or a new run is on its way)."""
        self.open = False
        self.win.inspector.set_live_only(False)
        self.ctl.config_panel.set_live_only(False)
        self.ctl._lock(True)
        self.ctl.dashboard.pause_bar.hide()
        self.ctl._update_actions()

    def _end(self) -> None:
        """The pause is over (resumed or ended): no gate on Undo, the step before it may merge again."""
        if self._sealed is not None:
            self._sealed.sealed = False
            self._sealed = None
        if self.open:  # NOTE: the run ended while paused: the controller's lock ends with it
            self.win.inspector.set_live_only(False)
            self.ctl.config_panel.set_live_only(False)
        self.active = self.open = self.editing_network = False
        self.win.scene.undo_gate = None
        self.ctl.dashboard.pause_bar.hide()

    def _undo_gate(self, which: str) -> str:
        stack = self.win.document.undo_stack
        if not self.open:
            return PAUSED_CANVAS
        able = stack.index() > self._base if which == "undo" else self._pushed and stack.index() < stack.count()
        return "" if able else UNDO_LIMIT

    def _on_index(self, index: int) -> None:
        if not self.active:
            return
        # NOTE: Redo is held back to the pause's own steps, so going past the pause's index is a new edit
        self._pushed = self._pushed or index > self._base
        if self.open:
            self._refresh_state()

    def _refresh_state(self) -> None:
        """Undo/Redo, Resume and the pause bar as the edits since the pause stand."""
        act = self.win.act
        act.undo.setEnabled(not self._undo_gate("undo"))
        act.redo.setEnabled(not self._undo_gate("redo"))
        changed = self.network_changed()
        text = OFFER_TEXT if not self.editing_network else EDITING_TEXT
        if changed:
            text = "The network changed: Resume cannot go on with it. " + EDITING_TEXT
        self.ctl.dashboard.pause_bar.show_state(self.editing_network, changed, text)
        self.ctl._update_actions()


def _transfer_text(transfer: dict[str, Any], parent: str) -> str:
    """``A new run from Run 1's weights at epoch 1.3: kept fc1; started afresh: fc2 (its shape changed).``"""
    at = transfer.get("at")
    where = f" at epoch {at:.4g}" if isinstance(at, (int, float)) else ""
    kept = ", ".join(transfer.get("kept") or []) or "no block"
    fresh = transfer.get("fresh") or {}
    whose = f"{parent}'s" if parent else "the paused"
    text = f"A new run from {whose} weights{where}: kept {kept}"
    if fresh:
        text += "; started afresh: " + ", ".join(f"{name} ({why})" for name, why in fresh.items())
    return text + "."
