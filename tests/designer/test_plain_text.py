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
from engine.templates import load_template
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
    assert f"'lone{EVIL}' has no input" in shows(item.toolTip())


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
    panel.on_insight(insight)
    panel.on_probes(probe_data())
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
    assert f"{names[0]} 75%" in label_shows(decisions.accuracy)
    gallery = decisions.gallery
    assert f"Grad-CAM of conv{EVIL}" in label_shows(gallery.title)
    assert gallery.plot.texts[0].textItem.toPlainText().startswith(f"{names[0]} → {names[1]}")
    cam.note(f"Grad-CAM will weigh 'conv{EVIL}' from the next probe run.")
    assert f"'conv{EVIL}'" in label_shows(cam.note_label)
    panel.show_block("dense" + EVIL, probe_able=True, running=False)
    assert f"'dense{EVIL}'" in label_shows(panel.status)


# ---------------------------------------------------------------------- the training dashboard
def test_dashboard_shows_head_names_literally(qtbot):
    """With several outputs each score is named after its head: axis label, legend and end message."""
    from designer.training.dashboard import TrainingDashboard

    dash = TrainingDashboard()
    qtbot.addWidget(dash)
    head = "head" + EVIL
    dash.begin_run(epochs=2, main_metric=f"{head}_accuracy")
    assert dash.metric_plot.getPlotItem().getAxis("left").label.toPlainText().strip() == f"{head} accuracy"
    dash.on_epoch({"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, f"val_{head}_accuracy": 0.5})
    legend = [label.item.toPlainText() for _, label in dash.metric_plot.getPlotItem().legend.items]
    assert legend == [f"validation {head} accuracy"]
    dash.on_finished({"epochs_run": 1, "seconds": 1.0, "test": {f"{head}_accuracy": 0.5}})
    assert f"test {head} accuracy 50.0 %" in dash.message_text()
    dash.on_failed(f"'{head}' could not be built")
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
