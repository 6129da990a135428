"""The undo command for the data and training settings.

:class:`SetConfigCommand` replaces ``project.data``, ``project.training`` or ``project.probes`` with a new
config built from plain data. It validates in its constructor, so a refused value
raises :class:`~engine.errors.ProjectError` with the engine's reason and nothing is
pushed. Consecutive edits of one field (spin-box clicks) merge into one undo step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QUndoCommand

from engine.config import DataConfig, ProbeConfig, TrainingConfig

if TYPE_CHECKING:  # pragma: no cover
    from designer.document import Document

__all__ = ["SECTIONS", "SetConfigCommand"]

SECTIONS = {"data": DataConfig, "training": TrainingConfig, "probes": ProbeConfig}
_MERGE_ID = 0x7C0F


class SetConfigCommand(QUndoCommand):
    """Set fields of ``project.data``, ``project.training`` or ``project.probes`` (``section``) as one undo step.

    Args:
        doc: the document whose project changes.
        section: ``"data"``, ``"training"`` or ``"probes"``.
        changes: field name -> new value (plain JSON-like data).
        text: the undo text ("Set learning rate").
    """

    def __init__(self, doc: Document, section: str, changes: dict[str, Any], text: str = "") -> None:
        super().__init__(text or f"Change {section} settings")
        self.doc = doc
        self.section = section
        cls = SECTIONS[section]
        self.old = getattr(doc.project, section).to_dict()
        new = dict(self.old)
        new.update(changes)
        self.new = cls.from_dict(new).to_dict()  # raises ProjectError with the reason
        self.fields = frozenset(changes)

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)

    def _apply(self, values: dict[str, Any]) -> None:
        setattr(self.doc.project, self.section, SECTIONS[self.section].from_dict(values))

    def id(self) -> int:  # noqa: A003 - Qt's name
        return _MERGE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        """Fold a following edit of the same field(s) into this step."""
        if not isinstance(other, SetConfigCommand) or getattr(self, "sealed", False):
            return False  # NOTE: sealed: the step before a run's pause, which the pause's edits must not join
        if other.doc is not self.doc or other.section != self.section or other.fields != self.fields:
            return False
        self.new = other.new
        return True

    def is_noop(self) -> bool:
        return self.new == self.old
