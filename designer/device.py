"""Which device training will use, in words for the status bar.

NOTE: finding out needs PyTorch, and importing it takes the window a second or more. So the
window asks a child Python (:func:`device_probe`: this file run as a script prints the answer)
and never imports PyTorch for a label; one answer serves every window of the process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QProcess, Signal

#: shown when the child could not say (it crashed, or Python could not start)
UNKNOWN = "unknown"
#: what the child runs: this module's own answer, printed
_CHILD = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
    "from designer.device import training_device_label; print(training_device_label())"
)


def training_device_label() -> str:
    """``"CUDA: <device name>"`` when PyTorch sees a GPU, else ``"CPU"``."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"CUDA: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    except Exception:  # noqa: BLE001 - a broken CUDA setup still trains on the CPU
        pass
    return "CPU"


class DeviceProbe(QObject):
    """The answer to "which device?", asked once per process. Signal: ``answered(label)``."""

    answered = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label: str | None = None
        self._process: QProcess | None = None

    def ask(self) -> str | None:
        """The label when known (then no signal follows), else None and ``answered`` comes later."""
        if self.label is None and "torch" in sys.modules:
            self.label = training_device_label()  # NOTE: PyTorch is here already: asking costs nothing
        if self.label is None and self._process is None:
            self.ask_child()
        return self.label

    def ask_child(self) -> None:
        """Start the child Python that answers; ``answered`` follows when it has."""
        process = QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(["-c", _CHILD])
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        process.start()

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        process = self._process
        text = bytes(process.readAllStandardOutput().data()).decode("utf-8", "replace").strip() if process else ""
        ok = status == QProcess.ExitStatus.NormalExit and code == 0 and text
        self._answer(text.splitlines()[-1] if ok else UNKNOWN)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._answer(UNKNOWN)

    def _answer(self, label: str) -> None:
        if self.label is None:
            self.label = label
            self.answered.emit(label)

    def stop(self) -> None:
        """End the child if it still runs (the program quits)."""
        if self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning:
            self._process.kill()
            self._process.waitForFinished(2000)


_PROBE: DeviceProbe | None = None


def device_probe() -> DeviceProbe:
    """The process's one :class:`DeviceProbe`, owned by the application (made on first use)."""
    global _PROBE
    if _PROBE is None:
        app = QCoreApplication.instance()
        _PROBE = DeviceProbe(app)
        app.aboutToQuit.connect(_PROBE.stop)
    return _PROBE
