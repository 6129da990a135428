"""The window starts without PyTorch: training runs in a child process, so the window needs it only
for Explore, the learning-rate finder, a stored run's Insight and export, which import it when used.

Checked in a fresh Python (this test process has imported PyTorch long ago): importing the
window, and a MainWindow with a template open, shown and painted, analysed with the data checks.
When PyTorch does get imported, the failure names the import chain that did it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: run in the child: records who imports torch first, then imports and opens the window
CHILD = r"""
import json, sys, traceback
from importlib.abc import MetaPathFinder

class Watch(MetaPathFinder):
    chain = None
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and Watch.chain is None:
            Watch.chain = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()
                           if "importlib" not in f.filename and f.filename != "<string>"]
        return None

sys.meta_path.insert(0, Watch())
report = {}
import designer.main_window
report["import"] = "torch" in sys.modules
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
from designer import theme
app = QApplication([])
theme.apply_theme(app, False)
window = designer.main_window.MainWindow()
assert window.new_from_template(TEMPLATE)
window.resize(1200, 800)

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, app.quit)
        return False

watch = FirstPaint()
window.view.viewport().installEventFilter(watch)
window.show()
app.exec()
window.document.analyze_now()  # NOTE: the analysis with the data checks, as after every edit
report["window"] = "torch" in sys.modules
report["chain"] = Watch.chain
window.document.undo_stack.setClean()
print(json.dumps(report), flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("template", ["lenet5", "mlp", "unet"])
def test_the_window_opens_a_template_without_importing_torch(template, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", NET_DESIGNER_DATA=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", CHILD.replace("TEMPLATE", repr(template))], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert out.returncode == 0 and lines, out.stderr[-3000:]
    report = json.loads(lines[-1])
    chain = "\n  ".join(report["chain"] or [])
    assert not report["import"], f"import designer.main_window imported torch:\n  {chain}"
    assert not report["window"], f"the window imported torch:\n  {chain}"


def test_the_device_label_comes_from_a_child_python(qtbot):
    from designer.device import DeviceProbe, training_device_label

    probe = DeviceProbe()
    try:
        with qtbot.waitSignal(probe.answered, timeout=120_000) as answer:
            probe.ask_child()
        assert answer.args == [training_device_label()] and probe.label == answer.args[0]
        assert probe.ask() == answer.args[0]  # asked again: known, no second child
    finally:
        probe.stop()
        probe.deleteLater()
