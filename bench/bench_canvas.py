"""Canvas speed on a 300-block graph: a parameter edit to repainted labels, and a drag frame.

Run: python bench/bench_canvas.py   (offscreen; no display needed)
Targets: (a) SetParamsCommand -> analysis -> labels updated -> viewport repainted < 50 ms;
(b) one frame while dragging a block (move one step, repaint the viewport) < 16 ms.
Both are medians, measured on a 1400×900 view at zoom 1 around the edited block and
again with the whole graph fitted into the view. The edit flips a conv in the middle of a
ResNet-like chain between 16 and 32 filters, which breaks the residual Add after it: about
half the blocks and wires change their text each time (a harsh case; a local edit is cheaper).
CPU time is printed beside wall time because a busy machine inflates the latter.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from bench.graphs import middle_conv, residual_graph  # noqa: E402
from designer.canvas.view import GraphView  # noqa: E402
from designer.commands import SetParamsCommand  # noqa: E402
from designer.document import Document, _safe_analyze  # noqa: E402
from engine.layout import apply_layout, auto_layout  # noqa: E402
from engine.project import Project  # noqa: E402

EDIT_TARGET_MS = 50.0
FRAME_TARGET_MS = 16.0


def _ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def _clocks() -> tuple[float, float]:
    """Wall clock and this process's CPU time (the second is steadier on a busy machine)."""
    return time.perf_counter(), time.process_time()


def bench_edit(app: QApplication, doc: Document, view: GraphView, nid: str, edits: int = 20) -> dict[str, float]:
    """Median time of each stage from pushing a SetParamsCommand to a repainted viewport."""
    stages: dict[str, list[float]] = {"push": [], "analysis": [], "scene": [], "paint": [], "total": [], "cpu": []}
    scene = view.scene()
    changed = []
    for i in range(edits):
        keys = {item.node_id: item._analysis_key for item in scene.node_items()}
        t0, c0 = _clocks()
        doc.push(SetParamsCommand(doc, [nid], {"filters": 32 if i % 2 == 0 else 16}))
        t1 = time.perf_counter()
        doc._timer.stop()  # NOTE: analyze_now() split in two: the engine's part, then the canvas's
        doc.analysis = _safe_analyze(doc.graph)
        t2 = time.perf_counter()
        doc.analysis_changed.emit(doc.analysis)
        app.processEvents()
        t3 = time.perf_counter()
        view.viewport().repaint()
        t4, c4 = _clocks()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, c4 - c0)):
            stages[key].append(dt)
        changed.append(sum(1 for item in scene.node_items() if item._analysis_key is not keys[item.node_id]))
    assert view.scene().node_item(nid).shape_text.startswith("16×")
    out = {k: _ms(v) for k, v in stages.items()}
    out["blocks_changed"] = statistics.median(changed)
    return out


def bench_drag(app: QApplication, view: GraphView, nid: str, frames: int = 40) -> tuple[float, float]:
    """Median wall and CPU time to move a block one step (its wires follow) and repaint the viewport."""
    item = view.scene().node_item(nid)
    start = item.pos()
    wall, cpu = [], []
    for i in range(frames):
        step = 4.0 if (i // 10) % 2 == 0 else -4.0
        t0, c0 = _clocks()
        item.setPos(item.pos() + QPointF(step, step / 2))
        view.viewport().repaint()
        t1, c1 = _clocks()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
    item.setPos(start)
    app.processEvents()
    return _ms(wall), _ms(cpu)


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    graph = residual_graph(300)
    apply_layout(graph, auto_layout(graph))
    doc = Document(Project(name="bench", graph=graph))
    nid = middle_conv(graph)
    view = GraphView(doc)
    view.resize(1400, 900)
    view.show()
    app.processEvents()
    print(f"graph: {len(graph)} blocks, {len(graph.edges)} wires; view 1400×900, platform {app.platformName()}")

    results = []
    for label, place in (
        ("zoom 1, around the block", lambda: (view.resetTransform(), view.scene().center_on_node(nid))),
        ("whole graph fitted", view.fit_all),
    ):
        place()
        app.processEvents()
        view.viewport().repaint()
        edit = bench_edit(app, doc, view, nid)
        frame = bench_drag(app, view, nid)
        results.append((label, view.zoom(), edit, frame))

    for label, zoom, edit, (frame, frame_cpu) in results:
        parts = ", ".join(f"{k} {edit[k]:.1f}" for k in ("push", "analysis", "scene", "paint"))
        print(f"[{label}, zoom {zoom:.2f}]")
        print(
            f"  (a) param edit -> labels repainted: {edit['total']:.1f} ms median (CPU {edit['cpu']:.1f})"
            f"  [{parts}]  target < {EDIT_TARGET_MS:.0f} ms; {edit['blocks_changed']:.0f} blocks changed per edit"
        )
        print(
            f"  (b) drag frame (move + repaint):    {frame:.1f} ms median (CPU {frame_cpu:.1f})"
            f"  target < {FRAME_TARGET_MS:.0f} ms"
        )
    view.close()


if __name__ == "__main__":
    main()
