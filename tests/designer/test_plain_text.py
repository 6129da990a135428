"""User text (block, project and class names, file paths, the engine's messages quoting them) is shown
literally everywhere in the window, never rendered as markup."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMessageBox

from designer import theme
from designer.code_preview import CodePreviewDialog
from designer.document import Document
from designer.inspector import InspectorWidget
from designer.palette import PaletteWidget
from designer.plaintext import as_plain, escape_rich, plain_label
from designer.problems import ProblemsWidget
from designer.summary import SummaryWidget
from engine.graph import Graph
from engine.project import Project
from engine.templates import list_templates, load_template
from tests.designer.conftest import training_window

EVIL = "<u>EVIL</u><img src=x>"
RUN_TIMEOUT = 60_000


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    theme.apply_theme(QApplication.instance(), False)


# ---------------------------------------------------------------------- what Qt shows
def html_shows(text: str) -> str:
    """The text a reader sees of HTML (pyqtgraph's titles, labels, legends and text items are HTML)."""
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


def shows(text: str, fmt: Qt.TextFormat = Qt.TextFormat.AutoText) -> str:
    """What a QLabel, tooltip or message box in format ``fmt`` shows for ``text`` (AutoText guesses)."""
    rich = fmt == Qt.TextFormat.RichText or (fmt == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text))
    return html_shows(text) if rich else text


def label_shows(label: QLabel) -> str:
    return shows(label.text(), label.textFormat())


# ---------------------------------------------------------------------- the helpers
@pytest.mark.parametrize(
    "text",
    [EVIL, "plain words", "a & b", "a &amp; b", "x < y > z", "<b>bold</b> first, then <i>", "<!DOCTYPE html><p>hi",
     "two\nlines <u>u</u>", "<u>a</u>\n<u>b</u>", "&lt;escaped already&gt;", "'quoted' \"twice\""],
)
def test_helpers_keep_text_literal(qtbot, text):
    assert shows(as_plain(text)) == text  # a tooltip or message box
    assert html_shows(escape_rich(text)).replace("\n", " ") == text.replace("\n", " ")  # inside HTML we write
    label = plain_label(text)
    qtbot.addWidget(label)
    assert label.textFormat() == Qt.TextFormat.PlainText and label_shows(label) == text


# ---------------------------------------------------------------------- panels
def evil_doc() -> tuple[Document, dict[str, str]]:
    """Input → Dense, plus a Dense with no input (an error quoting its name); every name is markup."""
    g = Graph()
    ids = {
        "input": g.add_node("Input", {"kind": "vector", "features": 4}, name="in" + EVIL, pos=(0, 0)).id,
        "fc": g.add_node("Dense", {"units": 3}, name="fc" + EVIL, pos=(230, 0)).id,
        "lone": g.add_node("Dense", {"units": 3}, name="lone" + EVIL, pos=(230, 300)).id,
    }
    g.connect(ids["input"], 0, ids["fc"], 0)
    doc = Document(Project(name="project" + EVIL, graph=g))
    doc.analyze_now()
    return doc, ids


def test_summary_shows_names_and_problems_literally(qtbot):
    doc, ids = evil_doc()
    summary = SummaryWidget()
    qtbot.addWidget(summary)
    summary.set_analysis(doc.graph, doc.analysis)
    row = summary.model.row_of(ids["lone"])
    assert summary.model.index(row, 0).data() == "lone" + EVIL
    tip = summary.model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert f"'lone{EVIL}' has no input" in shows(tip)


def test_problems_list_shows_messages_literally(qtbot):
    doc, ids = evil_doc()
    problems = ProblemsWidget()
    qtbot.addWidget(problems)
    problems.set_analysis(doc.graph, doc.analysis)
    item = problems.item_for(ids["lone"])
    assert f"'lone{EVIL}'" in item.text()  # list items are plain text
    assert f"'lone{EVIL}' is not connected yet" in shows(item.toolTip())  # no wire touches it yet


def test_inspector_shows_problems_and_refusals_literally(qtbot):
    doc, ids = evil_doc()
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.set_selection([ids["lone"]])
    assert f"'lone{EVIL}' has no input" in label_shows(inspector.form.problems)
    edit = inspector.form.name_edit
    edit.selectAll()
    QTest.keyClicks(edit, "fc" + EVIL)  # taken: the refusal quotes it
    QTest.keyClick(edit, Qt.Key.Key_Return)
    refusal = inspector.form.error_label(None)
    assert "already called" in refusal.text() and f"fc{EVIL}" in label_shows(refusal)


def test_palette_search_repeats_the_text_literally(qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.show()
    QTest.keyClicks(palette.search, EVIL)
    assert EVIL in label_shows(palette.no_match)


def test_a_message_box_shows_a_path_literally(qtbot, tmp_path, monkeypatch):
    folder = tmp_path / EVIL.replace("/", "_")  # no such folder: the save fails, naming the path
    target = folder / "model.py"
    shown: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: shown.append(a[2]))
    dialog = CodePreviewDialog("x = 1\n", title="project" + EVIL)
    qtbot.addWidget(dialog)
    dialog.save_button.click()
    assert len(shown) == 1 and str(target) in shows(shown[0])
    assert dialog.windowTitle().endswith("project" + EVIL)  # a window title is always plain


# ---------------------------------------------------------------------- Insight views
def probe_data(n: int = 3) -> dict:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 8, 8)).astype(np.float32)
    return {
        "step": 1, "seconds": 0.01, "problems": {"cam": f"'conv{EVIL}' could not be used"},
        "images": rng.random((n, 16, 16)).astype(np.float32),
        "activations": {"node_id": "n3", "name": "relu" + EVIL, "kind": "maps", "values": maps,
                        "min": float(maps.min()), "max": float(maps.max()), "dead": np.zeros(4, bool),
                        "dead_fraction": 0.0},
        "filters": {"node_id": "n2", "name": "conv" + EVIL, "tiles": rng.random((4, 1, 3, 3)).astype(np.float32),
                    "rgb": None},
        "cam": {"method": "gradcam", "node_id": "n2", "name": "conv" + EVIL, "class_index": 1,
                "maps": rng.random((n, 16, 16)).astype(np.float32), "classes": np.ones(n, int)},
        "predictions": {"scores": rng.random((n, 3)).astype(np.float32), "classes": np.arange(n) % 3},
        "weight_histograms": {"layers": ["conv" + EVIL], "node_ids": ["n2"], "counts": np.array([[1, 2, 3]]),
                              "edges": np.array([[0.0, 1.0, 2.0, 3.0]])},
        "activation_histograms": {"layers": ["relu" + EVIL], "node_ids": ["n3"], "counts": np.array([[3, 2, 1]]),
                                  "edges": np.array([[0.0, 1.0, 2.0, 3.0]])},
    }


def test_insight_titles_and_captions_show_names_literally(panel):
    names = [f"{k}{EVIL}" for k in ("zero", "one", "two")]
    m = np.array([[3, 1, 0], [0, 2, 1], [1, 0, 4]])
    rng = np.random.default_rng(1)
    insight = {
        "epoch": 1, "problems": {},
        "confusion": {"matrix": m, "per_class_accuracy": m.diagonal() / m.sum(1), "classes": names},
        "hardest": {"indices": np.array([4, 2]), "losses": np.array([2.0, 1.0]), "classes": names,
                    "images": rng.random((2, 16, 16)).astype(np.float32), "true": np.array([0, 1]),
                    "predicted": np.array([1, 1]),
                    "cam": {"method": "gradcam", "node_id": "n2", "name": "conv" + EVIL, "class_index": None,
                            "maps": rng.random((2, 16, 16)).astype(np.float32), "classes": np.array([1, 1])}},
    }
    panel.show_insight(insight)
    panel.show_probes(probe_data())
    panel.refresh(everything=True)

    cam = panel.cam
    header = label_shows(cam.header)
    assert f"of conv{EVIL} for class '{names[1]}'" in header and f"'conv{EVIL}' could not be used" in header
    assert [t.textItem.toPlainText() for t in cam.plot.texts] == [names[i % 3] for i in range(3)]
    assert [cam.class_box.itemText(i) for i in range(1, 4)] == names
    assert label_shows(panel.activations.header).startswith(f"relu{EVIL}: 4 feature maps")
    assert label_shows(panel.filters.header).startswith(f"conv{EVIL}: 4 filters")
    hist = panel.histograms
    assert f"relu{EVIL} 0" in label_shows(hist.ranges)
    assert f"conv{EVIL}: 0" in shows(hist.weights.toolTip())
    decisions = panel.decisions
    assert decisions.accuracy.item(0, 0).text() == names[0] and decisions.accuracy.accuracies()[0] == "75.0%"
    gallery = decisions.gallery
    assert f"Grad-CAM of conv{EVIL}" in label_shows(gallery.title)
    assert gallery.plot.texts[0].textItem.toPlainText().startswith(f"✗ {names[0]} → {names[1]}")
    cam.note(f"Grad-CAM will weigh 'conv{EVIL}' from the next probe run.")
    assert f"'conv{EVIL}'" in label_shows(cam.note_label)
    panel.show_block("dense" + EVIL, probe_able=True, running=False)
    assert f"'dense{EVIL}'" in label_shows(panel.status)


# ---------------------------------------------------------------------- the training dashboard
def test_dashboard_shows_head_names_literally(qtbot):
    """With several outputs each score is named after its head: axis label, legend and end message."""
    from designer.training.dashboard import TrainingDashboard
    from engine.training.events import EpochDone, Failed, Finished

    dash = TrainingDashboard()
    qtbot.addWidget(dash)
    head = "head" + EVIL
    dash.begin_run(epochs=2, main_metric=f"{head}_accuracy")
    assert dash.metric_plot.getPlotItem().getAxis("left").label.toPlainText().strip() == f"{head} accuracy"
    dash.on_epoch_done(EpochDone(epoch=1, step=1, train_loss=1.0, val_loss=0.9, scores={f"val_{head}_accuracy": 0.5}))
    legend = [label.item.toPlainText() for _, label in dash.metric_plot.getPlotItem().legend.items]
    assert legend == [f"validation {head} accuracy"]
    dash.on_finished(Finished(stopped=False, epochs_run=1, seconds=1.0, test={f"{head}_accuracy": 0.5}))
    assert f"test {head} accuracy 50.0 %" in dash.message_text()
    dash.on_failed(Failed(message=f"'{head}' could not be built"))
    assert f"'{head}' could not be built" in dash.message_text()


# ---------------------------------------------------------------------- a real run in the window
def evil_localization() -> Project:
    """The localization template (a class and a box output) on a few images, every name markup."""
    p = load_template("localization")
    p.name = "project" + EVIL
    for node in list(p.graph.nodes.values()):
        p.graph.rename(node.id, node.name.replace("_", "-") + EVIL)  # NOTE: the dashboard shows "_" as a space
    p.data.samples = 64
    p.data.val_fraction = 0.2
    p.training.epochs = 1
    p.training.batch_size = 32
    p.training.device = "cpu"
    p.probes.every_batches = 50  # one probe run, at the first step
    p.probes.extra["histograms"] = False
    return p


def test_a_run_shows_head_and_block_names_literally(qtbot):
    with training_window(qtbot, evil_localization()) as w:
        ctl, panel, dash = w.training, w.training.insight, w.training.dashboard
        with qtbot.waitSignal(ctl.run_ended, timeout=RUN_TIMEOUT) as ended:
            ctl.start()
        assert ended.args[0] == "finished"
        head = "class-output" + EVIL
        assert f"test {head} accuracy" in dash.message_text()  # the scores of each head carry its name
        legend = [label.item.toPlainText() for _, label in dash.metric_plot.getPlotItem().legend.items]
        assert f"validation {head} accuracy" in legend
        for view in (panel.cam, panel.activations):
            panel.tabs.setCurrentWidget(view)
            assert EVIL in label_shows(view.header)
        assert w.windowTitle().startswith("project" + EVIL)


# ---------------------------------------------------------------------- message boxes and input dialogs
EVIL_FILE = EVIL.replace("/", "_")  # NOTE: a file or folder name cannot hold "/"; the rest still looks like markup


class Dialogs:
    """QMessageBox's and QInputDialog's static functions replaced: each records (kind, title, text) and cancels."""

    def __init__(self, monkeypatch) -> None:
        from PySide6.QtWidgets import QInputDialog

        self.shown: list[tuple[str, str, str]] = []
        for kind in ("critical", "warning", "information"):
            monkeypatch.setattr(QMessageBox, kind, lambda *a, k=kind, **kw: self._record(k, a))
        monkeypatch.setattr(QMessageBox, "question",
                            lambda *a, **kw: self._record("question", a, QMessageBox.StandardButton.Cancel))
        monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **kw: self._record("getInt", a, (0, False)))

    def _record(self, kind: str, args: tuple, answer=None):
        self.shown.append((kind, args[1], args[2]))
        return answer

    def take(self) -> tuple[str, str, str]:
        """The one dialog shown since the last take, with the text a reader sees in it."""
        assert len(self.shown) == 1, self.shown
        kind, title, text = self.shown.pop()
        return kind, title, shows(text)


def test_file_dialogs_show_names_and_paths_literally(qtbot, tmp_path, monkeypatch):
    from designer.commands import RenameCommand

    dialogs = Dialogs(monkeypatch)
    doc, ids = evil_doc()
    folder = tmp_path / EVIL_FILE  # no such folder
    with training_window(qtbot, doc.project) as w:
        files = w.files
        assert not files.new_from_template("nope" + EVIL)
        known = ", ".join(t.name for t in list_templates())
        assert dialogs.take() == ("critical", "New from template",
                                  f"there is no template called 'nope{EVIL}' (templates: {known})")
        assert not files.open_path(folder / "p.json", ask=False)
        kind, title, text = dialogs.take()
        assert (kind, title) == ("critical", "Could not open project") and str(folder / "p.json") in text
        assert not files.save_to(folder / f"{EVIL_FILE}.json")
        assert dialogs.take() == ("critical", "Could not save project",
                                  f"{EVIL_FILE}.json could not be saved: No such file or directory")
        assert files.export_code(tmp_path / "m.py", ask=False) == []
        why = f"the network has errors: 'lone{EVIL}' has no input: wire a block into it"
        assert dialogs.take() == ("warning", "Export PyTorch code", f"The code was not exported: {why}")
        assert files.preview_code() is None
        assert dialogs.take() == ("warning", "PyTorch code", f"There is no code yet: {why}")
        w.document.push(RenameCommand(w.document, ids["fc"], "fc2" + EVIL))
        assert not files.maybe_save()
        assert dialogs.take() == ("question", "Unsaved changes",
                                  f"“project{EVIL}” has changes that are not saved.\nSave them first?")

        def broken() -> bool:
            raise RuntimeError(f"'{EVIL}' went wrong")  # NOTE: whatever escapes the prompt is reported, not raised

        monkeypatch.setattr(files, "maybe_save", broken)
        assert not w.close() and w.isVisible()
        assert dialogs.take() == ("critical", "Could not save project", f"The window stays open: '{EVIL}' went wrong")
        monkeypatch.undo()


def test_the_canvas_tooltip_shows_a_block_name_literally(qtbot, monkeypatch):
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtWidgets import QGraphicsSceneHelpEvent

    import designer.canvas.scene as scene_module

    doc, ids = evil_doc()
    tips: list[str] = []
    monkeypatch.setattr(scene_module.QToolTip, "showText", lambda _pos, text, *a: tips.append(text))
    with training_window(qtbot, doc.project) as w:
        item = w.scene.node_item(ids["lone"])
        event = QGraphicsSceneHelpEvent(QEvent.Type.GraphicsSceneHelp)
        event.setScenePos(item.sceneBoundingRect().center())
        event.setScreenPos(QPoint(10, 10))
        w.scene.helpEvent(event)
    assert len(tips) == 1
    assert shows(tips[0]).startswith(f"lone{EVIL} (Dense)\nNot connected yet")  # no wire touches it yet


def test_the_hardest_gallery_title_shows_an_ampersand_literally(qtbot):
    """Escaped HTML in a label that guesses shows ``&amp;`` when nothing else in it looks like markup."""
    from designer.insight.samples import HardestGallery

    gallery = HardestGallery()
    qtbot.addWidget(gallery)
    gallery.resize(600, 300)
    rng = np.random.default_rng(0)
    gallery.show_hardest({
        "indices": np.array([3]), "losses": np.array([1.5]), "images": rng.random((1, 16, 16)).astype(np.float32),
        "true": None, "predicted": None, "classes": None,
        "cam": {"method": "gradcam", "node_id": "n2", "name": "conv & co", "class_index": None,
                "maps": rng.random((1, 16, 16)).astype(np.float32), "classes": np.array([0])},
    })
    assert "(Grad-CAM of conv & co)" in label_shows(gallery.title)


# ---------------------------------------------------------------------- runs: list, plots, dialogs, Explore
def evil_run(folder) -> None:
    """Train the evil localization project one epoch into ``folder``, labelled ``run<EVIL>`` (no live views)."""
    from engine.training.runs import read_run
    from engine.training.trainer import Trainer

    p = evil_localization()
    p.probes.enabled = False
    for _event in Trainer(p, out_dir=folder, label="run" + EVIL).events():
        pass
    assert read_run(folder).status == "finished"


@pytest.fixture
def evil_runs(tmp_path):
    """A runs folder holding one finished run, in a folder whose name looks like markup."""
    runs = tmp_path / "runs"
    evil_run(runs / EVIL_FILE)
    return runs


def test_the_runs_list_plots_and_dialogs_show_names_literally(qtbot, evil_runs, monkeypatch, tmp_path):
    from designer.training.runs import RunsPanel

    dialogs = Dialogs(monkeypatch)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    assert panel.show_runs_in(evil_runs) == []
    (entry,) = panel.entries
    assert entry.name == "run" + EVIL and panel.list.item(0).text().startswith("run" + EVIL)
    tip = shows(panel.list.item(0).toolTip())
    assert tip.startswith(f"run{EVIL}: project{EVIL}\n") and f"folder: {evil_runs / EVIL_FILE}" in tip
    legend = [label.item.toPlainText() for _, label in panel.loss_plot.getPlotItem().legend.items]
    assert legend == [f"run{EVIL}"]
    item = panel.metric_plot.getPlotItem()
    title = item.titleLabel.item.toPlainText()
    assert title.startswith("Validation ") and EVIL in title  # the score is named after its head
    assert item.getAxis("left").label.toPlainText().strip() == title.removeprefix("Validation ")

    assert not panel.delete_current()
    kind, title, text = dialogs.take()
    assert (kind, title) == ("question", "Delete run")
    assert [line for line in text.splitlines() if line] == [  # NOTE: the blank line is a paragraph's gap there
        f"Delete “run{EVIL}” and its folder?", str(entry.path),
        "Its checkpoints and curves go to the trash where the system has one, else they are deleted for good."]
    (entry.path / "summary.json").unlink()  # the folder is damaged meanwhile: the rename refuses, naming it
    assert not panel.rename_current("new name")
    kind, title, text = dialogs.take()
    assert (kind, title) == ("warning", "Rename run") and text.startswith(f"{entry.path}: not a training run folder")

    elsewhere = tmp_path / ("not a run " + EVIL_FILE)
    elsewhere.mkdir()
    monkeypatch.setattr("designer.training.runs.QFileDialog.getExistingDirectory", lambda *a, **k: str(elsewhere))
    panel.choose_folder()
    kind, title, text = dialogs.take()
    assert (kind, title) == ("warning", "Open run folder") and f"not a run {EVIL_FILE}" in text


def test_continue_and_fork_dialogs_show_the_run_name_literally(qtbot, evil_runs, monkeypatch):
    dialogs = Dialogs(monkeypatch)
    with training_window(qtbot, evil_localization()) as w:
        runs = w.training.runs
        runs.show_runs_in(evil_runs)
        (entry,) = runs.entries
        assert w.training.continue_run(entry) is None  # cancelled
        assert dialogs.take() == ("getInt", "Continue training",
                                  f"run{EVIL} has trained 1 epoch(s). Train how many more?")
        assert w.training.fork_run(entry, epoch=7, epochs=9) is None
        kind, title, text = dialogs.take()
        assert (kind, title) == ("warning", "Fork run") and text.startswith(f"{EVIL_FILE}: no checkpoint of epoch 7")


def test_explore_shows_run_and_block_names_literally(qtbot, evil_runs):
    from designer.insight.explore import ExploreView
    from designer.training.runs import RunEntry
    from engine.training.runs import read_run

    view = ExploreView()
    qtbot.addWidget(view)
    view.resize(800, 500)
    view.show()
    entry = RunEntry.from_record(read_run(evil_runs / EVIL_FILE))
    assert entry.load_weights() is not None
    try:
        view.set_run(entry)
        name = view._graph.nodes[view.node_id].name
        assert EVIL in name  # every block of the evil project is named with markup
        assert label_shows(view.header).startswith(f"run{EVIL} · {name}: ")
        assert view.header.textFormat() == Qt.TextFormat.RichText
        with qtbot.waitSignal(view.ended, timeout=RUN_TIMEOUT) as ended:
            assert view.find_patches()
            assert f"of '{name}' responds most" in label_shows(view.message)
        assert ended.args == ["patches"], label_shows(view.message)
        assert f"of '{name}': each tile is" in label_shows(view.caption)
        assert all(label.textFormat() == Qt.TextFormat.PlainText for label in (view.message, view.caption))
        entry.label = "a & b"  # escaped, and shown as the rich text it is even with no tag before it
        view.node_id = None
        view._update_controls()
        assert label_shows(view.header).startswith("a & b: click a layer block")
    finally:
        view.shutdown()
