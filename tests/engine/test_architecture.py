"""The one architectural rule: engine/ never imports Qt, pyqtgraph or designer."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, pkgutil, sys, importlib

    BLOCKED = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "designer")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked in this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import engine
    names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
    for name in names:
        importlib.import_module(name)
    leaked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
    assert not leaked, leaked
    print(len(names))
    """
)


@pytest.mark.slow  # NOTE: tests/engine stays under 30 s without the slow ones; the full suite (CI) runs them
def test_every_engine_module_imports_without_qt():
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 10  # every module was really imported
