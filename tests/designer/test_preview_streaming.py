"""The data preview of a set over the memory budget: only the samples shown are read, and the dialog shows
what it shows for the same set in memory."""

from __future__ import annotations

import numpy as np
import pytest

from designer.training.preview_dialog import DataPreviewDialog
from engine.graph import Graph
from engine.project import Project
from tests.engine.helpers import chain, vector_input
from tests.engine.test_streaming import folder_project, make_folder


def forbid_loading_whole(monkeypatch):
    from engine.data import loading

    def refuse(*args, **kwargs):
        raise AssertionError("the data set was loaded whole")

    monkeypatch.setattr(loading, "load_dataset", refuse)


def shown(qtbot, project: Project) -> DataPreviewDialog:
    dialog = DataPreviewDialog(project)
    qtbot.addWidget(dialog)
    assert not dialog.error, dialog.error
    return dialog


def table_cells(dialog) -> list[list[str]]:
    table = dialog.view
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_a_streamed_image_folder_previews_as_in_memory(qtbot, tmp_path, monkeypatch):
    root = make_folder(tmp_path / "pets", mode="RGB")
    in_memory = shown(qtbot, folder_project(root, budget=2.0, channels=3))
    forbid_loading_whole(monkeypatch)
    streamed = shown(qtbot, folder_project(root, budget=0.0, channels=3))
    assert streamed.labels() == in_memory.labels() and len(streamed.samples) == 32
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(streamed.samples, in_memory.samples))
    assert streamed.view.layout().count() == 32
    assert "read from disk" in streamed.header.text() and "read from disk" not in in_memory.header.text()
    assert "34 samples, 3 classes, each 3×8×8" in streamed.header.text()


def csv_project(path, budget: float) -> Project:
    g = Graph()
    chain(g, vector_input(g, 3), ("Dense", {"units": 2}), "ClassificationOutput")
    p = Project(name="table", graph=g)
    p.data.dataset, p.data.path, p.data.memory_budget_gib = "csv", str(path), budget
    return p


@pytest.mark.parametrize("rows", [7, 150])
def test_a_streamed_table_lists_the_raw_values_in_memory_lists(qtbot, tmp_path, monkeypatch, rows):
    rng = np.random.default_rng(rows)
    x = rng.normal(size=(rows, 3)).round(4)
    lines = ["a,b,c,target", *(f"{r[0]},{r[1]},{r[2]},{'yes' if r[1] > 0 else 'no'}" for r in x)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    in_memory = shown(qtbot, csv_project(path, budget=2.0))
    forbid_loading_whole(monkeypatch)
    streamed = shown(qtbot, csv_project(path, budget=0.0))
    cells = table_cells(streamed)
    assert cells == table_cells(in_memory) and len(cells) == min(rows, 24)
    picked = [s.index for s in streamed.picked]
    values = np.array([[float(v) for v in row[1:]] for row in cells])
    np.testing.assert_allclose(values, x[picked], rtol=5e-3, atol=0)  # shown to 3 significant digits
    assert [row[0] for row in cells] == ["yes" if x[i, 1] > 0 else "no" for i in picked]
