"""The engine's tables, data checks and colour ramp load without PyTorch (the window's fast start).

Each import is checked in a fresh Python, where nothing has imported PyTorch yet; the trainer's
objectives are checked to read the output blocks' declarations through the same functions, and the
lazy names of ``engine.data`` to be the very objects their modules define.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

TORCH_FREE = (
    "engine.tasks",
    "engine.colormap",
    "engine.datacheck",
    "engine.datafacts",
    "engine.data",
    "engine.data.basics",
    "engine.data.sets",
    "engine.data.splits",
    "engine.training.sweep",  # the Runs dock reads sweeps (read_sweep) before anything trains
    "engine.training.live",  # the paused run's settings and the words of its marks, in the window
)


def _imports_torch(code: str) -> list[str]:
    """The heavy packages that ``code`` imported, run in a fresh Python."""
    probe = code + "\nimport sys\nprint(sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own probe's list of names


@pytest.mark.slow
@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_loads_without_torch(module):
    assert _imports_torch(f"import {module}") == []


@pytest.mark.slow
def test_data_checks_of_the_templates_need_no_torch():
    """The analysis the window runs after every edit, with the data checks, for every template."""
    code = (
        "from engine.datacheck import analyze_project\n"
        "from engine.templates import list_templates, load_template\n"
        "for t in list_templates():\n"
        "    analyze_project(load_template(t.name))\n"
    )
    assert _imports_torch(code) == []


def test_the_objectives_read_the_heads_declarations():
    from engine import tasks
    from engine.training import objectives

    assert objectives.head_spec is tasks.head_spec and objectives.main_metric is tasks.main_metric


def test_main_metric_follows_the_first_output_block():
    from engine.graph import Graph
    from engine.tasks import main_metric

    g = Graph()
    assert main_metric(g) == "score"
    x = g.add_node("Input", {"kind": "vector", "features": 2})
    d = g.add_node("Dense", {"units": 1})
    g.connect(x.id, 0, d.id, 0)
    r = g.add_node("RegressionOutput", {})
    g.connect(d.id, 0, r.id, 0)
    assert main_metric(g) == "r2"


def test_lazy_data_names_are_the_modules_own():
    import engine.data as data
    from engine.data import base, basics, loading, sets, splits

    assert data.DataError is basics.DataError is base.DataError
    assert data.DATASET_INFO is sets.DATASET_INFO is loading.DATASET_INFO
    assert data.Dataset is base.Dataset and data.split_dataset is splits.split_dataset
    assert set(data.__all__) <= set(dir(data))
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018 - the attribute access is the test


def test_colour_ramp_is_the_probes_ramp():
    from engine import colormap
    from engine.probes import cam

    assert cam.overlay is colormap.overlay and cam.COLOR_TABLE is colormap.COLOR_TABLE
    # the ramp's ends and middle, from its stops: dark violet, the stop at 0.6 at 153/255, pale amber
    np.testing.assert_array_equal(colormap.COLOR_TABLE[0], [12, 8, 38])
    np.testing.assert_array_equal(colormap.COLOR_TABLE[255], [252, 240, 150])
    np.testing.assert_array_equal(colormap.COLOR_TABLE[153], [206, 66, 70])
