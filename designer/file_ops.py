"""File commands of the window: new, open, save, save as, recent files, export, code preview.

Every command that would replace the open project asks first when it has unsaved
changes (:meth:`FileController.maybe_save`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from designer.plaintext import as_plain
from designer.settings import settings
from engine.errors import NetDesignerError

if TYPE_CHECKING:  # pragma: no cover
    from designer.main_window import MainWindow

PROJECT_FILTER = "Net Designer projects (*.json);;All files (*)"
RECENT_KEY = "files/recent"
MAX_RECENT = 8


def recent_files() -> list[str]:
    value = settings().value(RECENT_KEY, [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def remember_recent(path: str | Path) -> None:
    path = str(Path(path).resolve())
    files = [path] + [p for p in recent_files() if p != path]
    settings().setValue(RECENT_KEY, files[:MAX_RECENT])


def forget_recent(path: str | Path | None = None) -> None:
    """Drop ``path`` from the recent list (everything when None)."""
    files = [] if path is None else [p for p in recent_files() if p != str(path)]
    settings().setValue(RECENT_KEY, files)


class FileController(QObject):
    """The window's file commands. ``message(str)`` reports what happened for the status bar."""

    message = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window

    @property
    def document(self):
        return self.window.document

    # ------------------------------------------------------------------ unsaved work
    def maybe_save(self) -> bool:
        """True when it is fine to drop the open project (saved, discarded, or unchanged)."""
        if not self.document.is_modified():
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved changes",
            as_plain(f"“{self.document.project.name}” has changes that are not saved.\nSave them first?"),
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            # NOTE: True only when the file was written; a failed save keeps the project open.
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    # ------------------------------------------------------------------ new / open
    def new_blank(self) -> bool:
        if not self.maybe_save():
            return False
        from engine.project import Project

        self.document.replace(Project(name="Untitled"))
        self.window.dismiss_start_panel()
        return True

    def new_from_template(self, name: str | None = None) -> bool:
        """Replace the project with a copy of template ``name`` (asks with the gallery when None)."""
        if name is None:
            from designer.gallery import TemplateGalleryDialog

            dialog = TemplateGalleryDialog(self.window)
            if not dialog.exec() or not dialog.selected_name:
                return False
            name = dialog.selected_name
        if not self.maybe_save():
            return False
        from engine.templates import load_template

        try:
            project = load_template(name)
        except NetDesignerError as exc:
            QMessageBox.critical(self.window, "New from template", as_plain(exc))
            return False
        self.document.replace(project, None)
        self.window.fit_soon()
        self.message.emit(f"New project from the {project.name} template")
        return True

    def open(self) -> bool:
        """Ask for a project file and open it."""
        if not self.maybe_save():
            return False
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", str(self._folder()), PROJECT_FILTER)
        return self.open_path(path, ask=False) if path else False

    def open_path(self, path: str | Path, ask: bool = True) -> bool:
        """Open ``path``; a file that cannot be read is explained in a message box."""
        if ask and not self.maybe_save():
            return False
        from engine.project import load_project

        try:
            project = load_project(path)
        except (NetDesignerError, OSError) as exc:
            QMessageBox.critical(self.window, "Could not open project", as_plain(exc))
            return False
        self.document.replace(project, Path(path))
        remember_recent(path)
        self.window.fit_soon()
        self.message.emit(f"Opened {Path(path).name}")
        return True

    # ------------------------------------------------------------------ save
    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self.save_to(self.document.path)

    def save_as(self) -> bool:
        doc = self.document
        suggested = doc.path or self._folder() / f"{_file_stem(doc.project.name)}.json"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save project as", str(suggested), PROJECT_FILTER)
        if not path:
            return False
        if not path.lower().endswith(".json"):
            path += ".json"
        return self.save_to(path)

    def save_to(self, path: str | Path) -> bool:
        """Write the project to ``path``; any failure is explained in a message box and gives False."""
        from engine.project import save_project

        doc, path = self.document, Path(path)
        old_name = doc.project.name
        if old_name in ("", "Untitled"):
            doc.project.name = path.stem
        try:
            save_project(doc.project, path)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the user must hear of it
            doc.project.name = old_name
            QMessageBox.critical(self.window, "Could not save project", as_plain(_save_failure(path, exc)))
            return False
        doc.mark_saved(path)
        remember_recent(path)
        self.window.update_title()
        self.message.emit(f"Saved {path.name}")
        return True

    # ------------------------------------------------------------------ export
    def _weights(self):
        """The project's trained weights as a state_dict, or None when it has none."""
        doc = self.document
        if not doc.project.weights or doc.path is None:
            return None
        from engine.export import load_weights
        from engine.project import weights_path

        path = weights_path(doc.project, doc.path)
        return load_weights(path) if path is not None and path.exists() else None

    def export_code(self, path: str | Path | None = None, run=None, ask: bool = True) -> list[Path]:
        """Write the model as a standalone .py with a run's trained weights as .pt beside it.

        ``run`` (a RunEntry) is the run whose network and weights go out; when None, the person picks
        one of the project's runs (the latest first) or the untrained network, or with ``ask`` False
        the latest run is taken. A run exported from its folder carries its best epoch's weights and
        the input normalization it trained with, so the module takes raw data.
        """
        doc = self.document
        if run is None:
            run = self._choose_run() if ask else self._latest_run()
            if run is False:
                return []
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self.window, "Export PyTorch code", str(self._folder() / f"{_file_stem(doc.project.name)}.py"),
                "Python files (*.py)",
            )
            if not path:
                return []
            if not path.lower().endswith(".py"):
                path += ".py"
        from engine.export import export_code

        try:
            graph, state, spec = self._what_to_export(run)
            written = export_code(graph, path, name=doc.project.name, state_dict=state, input_spec=spec)
        except (NetDesignerError, OSError) as exc:
            QMessageBox.warning(self.window, "Export PyTorch code", as_plain(f"The code was not exported: {exc}"))
            return []
        weights = f" with the weights of {run.name}" if run is not None and len(written) > 1 else ""
        self.message.emit("Exported " + " and ".join(p.name for p in written) + weights)
        return written

    def export_package(self, folder: str | Path | None = None, run=None, ask: bool = True) -> list[Path]:
        """Write a training package (model.py, train.py, config.json, data.npz) into a folder.

        ``run`` is chosen as for :meth:`export_code`; a run's package holds its network and settings, and its
        weights as model.pt. The folder dialog opens in the project's folder. Returns the files written.
        """
        if run is None:
            run = self._choose_run("Export training package") if ask else self._latest_run()
            if run is False:
                return []
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.window, "Export training package: choose an empty folder",
                                                      str(self._folder()))
            if not folder:
                return []
        from engine.package import export_package
        from engine.project import project_from_dict

        doc = self.document
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)  # NOTE: loading the data takes a moment
        try:
            _, state, spec = self._what_to_export(run)
            project = doc.project if run is None else project_from_dict(run.record.project, source=run.name)
            base_dir = doc.path.parent if doc.path is not None else None
            written = export_package(project, folder, base_dir=base_dir, state_dict=state, input_spec=spec)
        except (NetDesignerError, OSError) as exc:
            QMessageBox.warning(self.window, "Export training package", as_plain(f"The package was not written: {exc}"))
            return []
        finally:
            QApplication.restoreOverrideCursor()
        self.message.emit(f"Wrote the training package in {Path(folder).name}: run python train.py or torchrun there")
        return written

    def _runs_with_weights(self) -> list:
        runs = self.window.training.runs.entries
        return [e for e in reversed(runs) if e.weights is not None or (e.path is not None and _has_checkpoint(e.path))]

    def _latest_run(self):
        runs = self._runs_with_weights()
        return runs[0] if runs else None

    def _choose_run(self, title: str = "Export PyTorch code"):
        """The run to export (a RunEntry), None for the untrained network, False when cancelled."""
        runs = self._runs_with_weights()
        if not runs:
            return None
        labels = [f"{e.name}: {e.score_text() or e.outcome}" for e in runs] + ["No weights: the untrained network"]
        choice, ok = QInputDialog.getItem(self.window, title, "Export the weights of:", labels, 0, False)
        if not ok:
            return False
        return runs[labels.index(choice)] if choice in labels[:-1] else None

    def _what_to_export(self, run):
        """(graph, state_dict or None, InputSpec or None) for ``run`` (None: the open network, untrained)."""
        from engine.export import trained_weights
        from engine.project import project_from_dict

        if run is None:
            return self.document.graph, self._weights(), None
        graph = project_from_dict(run.record.project, source=run.name).graph  # NOTE: the network that trained
        if run.path is not None and _has_checkpoint(run.path):
            state, spec = trained_weights(run.path)
            return graph, state, spec
        return graph, run.weights, None

    def _folder(self) -> Path:
        """Where file dialogs open: the project's folder, else the user's documents folder."""
        return dialog_folder(self.document.path)

    def generated_source(self) -> str:
        """The code the export would write (raises CompileError when the network has errors)."""
        from engine.export import generate_for

        return generate_for(self.document.graph, self.document.project.name).source

    def preview_code(self):
        """Show the generated code in a dialog (returns the dialog, shown non-modally)."""
        from designer.code_preview import CodePreviewDialog

        try:
            source = self.generated_source()
        except NetDesignerError as exc:
            QMessageBox.warning(self.window, "PyTorch code", as_plain(f"There is no code yet: {exc}"))
            return None
        dialog = CodePreviewDialog(source, self.document.project.name, on_save=lambda: self.export_code(), parent=self.window)
        dialog.show()
        return dialog


def dialog_folder(project_path: Path | None) -> Path:
    """Where every file dialog of the window opens: the folder of the project file
    ``project_path``, else (a project never saved) the user's documents folder.

    NOTE: never the program's own working folder, where a dialog opened before.
    """
    if project_path is not None and Path(project_path).parent.is_dir():
        return Path(project_path).parent
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(docs) if docs and Path(docs).is_dir() else Path.home()


def _save_failure(path: Path, exc: Exception) -> str:
    """The message for a failed save: the engine's own words, or the unexpected error named."""
    if isinstance(exc, NetDesignerError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{path.name} could not be saved: {exc.strerror or exc}"
    return f"{path.name} could not be saved because of an unexpected error ({type(exc).__name__}: {exc})"


def _has_checkpoint(folder: Path) -> bool:
    return (folder / "best.pt").is_file() or (folder / "last.pt").is_file()


def _file_stem(name: str) -> str:
    from engine.codegen import identifier

    return identifier(name or "model", "model")
