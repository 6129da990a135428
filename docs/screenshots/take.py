"""Open the designer in one of the documented states, for screenshots.

Run from the project root under a virtual screen, e.g.::

    ../shared/tools/shot docs/screenshots/lenet5-1600x1000.png --size 1600x1000 --wait 8 -- lenet5
    # with SHOT_CMD="python docs/screenshots/take.py"

Scenes: ``start`` (the start state), ``template:NAME[:BLOCK]`` (a template, arranged and fitted, with one
block selected), ``lenet5`` (the LeNet-5 template, arranged and fitted),
``resnet-error`` (the ResNet template with one convolution's filters changed so a merge fails),
``resnet50`` (ResNet-50 as its stages) and ``resnet50-stage`` (its layer2 opened),
``training`` (LeNet-5 training live; shoot with ``--wait 16``), ``explore`` and ``explore-dream``
(LeNet-5 trained for 2 epochs, then the Explore tab's top patches or dream for conv2; ``--wait 35``),
``explore-nearest`` (the same, then the images nearest to sample 7 at relu4, its 84-value latent space),
``class-maps`` and ``hardest`` (LeNet-5 after 3 epochs: the Class maps tab, the Decisions tab with the
hardest samples), ``segmentation`` (U-Net: masks), ``localization`` (boxes) and ``localization-hardest``
(its Decisions tab), ``linear-templates`` (the linear classifier after 10 epochs: its ten digit templates in
the Filters tab); ``--wait 40``; ``wsl`` (Network in Network on the shapes after 8 epochs: the boxes cut
from its CAM beside the true boxes in the Class maps tab; ``--wait 60``, more on a busy machine);
``cross-validation`` (the MLP template, 5-fold cross-validation of 10 epochs each, then the dashboard's
mean ± spread; ``--wait 30``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import Qt, QTimer  # noqa: E402

from designer import app as designer_app  # noqa: E402
from designer import theme  # noqa: E402


def _broken_resnet() -> Path:
    """A copy of the ResNet template whose second block's conv gives 24 channels, not 32."""
    data = json.loads((ROOT / "resources/templates/resnet.json").read_text())
    for node in data["graph"]["nodes"]:
        if node["name"] == "res2_conv2":
            node["params"]["filters"] = 24
    data["name"] = "Small ResNet (broken)"
    path = Path(tempfile.gettempdir()) / "resnet-broken.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def main(scene: str) -> int:
    application = designer_app._application()
    theme.apply_theme(application, theme.saved_dark())
    from designer.main_window import MainWindow

    window = MainWindow()
    designer_app._place(window)

    def act() -> None:
        if scene == "lenet5":
            window.new_from_template("lenet5")
            QTimer.singleShot(200, lambda: (window.arrange("lr"), window.view.fit_all()))
            QTimer.singleShot(400, lambda: window.scene.select_nodes([_named(window, "conv2")]))
        elif scene.startswith("template:"):  # NOTE: template:NAME[:BLOCK], that block selected in the Inspector
            name, _, block = scene.removeprefix("template:").partition(":")
            window.new_from_template(name)
            QTimer.singleShot(200, lambda: (window.arrange("lr"), window.view.fit_all()))
            if block:
                QTimer.singleShot(400, lambda: window.scene.select_nodes([_named(window, block)]))
        elif scene == "resnet-error":
            window.files.open_path(_broken_resnet(), ask=False)

            def show_error() -> None:
                window.document.analyze_now()
                bad = window.document.analysis.errors()[0].node_id
                window.view.set_zoom(0.75)
                window.select_and_center(bad)

            QTimer.singleShot(300, show_error)
        elif scene in ("resnet50", "resnet50-stage"):
            window.new_from_template("resnet50")
            QTimer.singleShot(200, window.view.fit_all)
            if scene == "resnet50-stage":
                QTimer.singleShot(400, lambda: window.view.open_unit(_named(window, "layer2")))
                QTimer.singleShot(700, window.view.fit_all)
        elif scene == "training":
            window.new_from_template("lenet5")
            QTimer.singleShot(200, lambda: (window.arrange("lr"), window.view.fit_all()))
            QTimer.singleShot(400, lambda: window.scene.select_nodes([_named(window, "conv2")]))
            QTimer.singleShot(600, window.training.start)
        elif scene in ("explore", "explore-dream", "explore-nearest"):
            window.new_from_template("lenet5")
            block = "relu4" if scene == "explore-nearest" else "conv2"
            QTimer.singleShot(200, lambda: (window.arrange("lr"), window.view.fit_all()))
            QTimer.singleShot(400, lambda: window.scene.select_nodes([_named(window, block)]))
            QTimer.singleShot(600, lambda: window.training.start(epochs=2))
            window.training.run_ended.connect(lambda _outcome: _explore(window, scene.removeprefix("explore-")))
        elif scene == "cross-validation":
            window.new_from_template("mlp")
            QTimer.singleShot(200, lambda: (window.arrange("lr"), window.view.fit_all()))
            QTimer.singleShot(600, lambda: window.training.cross_validate(5, epochs=10))
        elif scene in INSIGHT_SCENES:
            template, epochs, tab = INSIGHT_SCENES[scene]
            window.new_from_template(template)
            window.document.project.probes.every_batches = 5  # NOTE: a fuller film strip of class maps
            if scene == "wsl":
                window.document.project.probes.cam_method = "cam"  # NOTE: the CAM paper's own maps, after its GAP
            QTimer.singleShot(200, lambda: (window.arrange("lr"), window.view.fit_all()))
            QTimer.singleShot(600, lambda: window.training.start(epochs=epochs))
            window.training.run_ended.connect(lambda _outcome: _insight(window, tab))

    QTimer.singleShot(300, act)
    return application.exec()


#: scene: (template, epochs, Insight tab shown once the run has ended); shoot with ``--wait 40``
INSIGHT_SCENES = {
    "class-maps": ("lenet5", 3, "cam"),
    "hardest": ("lenet5", 3, "decisions"),
    "segmentation": ("unet", 2, "predictions"),
    "localization": ("localization", 3, "predictions"),
    "localization-hardest": ("localization", 3, "decisions"),
    "linear-templates": ("linear_classifier", 10, "filters"),
    "wsl": ("nin", 8, "cam"),
}


def _insight(window, tab: str) -> None:
    window.training.show_insight()
    insight = window.training.insight
    insight.tabs.setCurrentWidget(getattr(insight, tab))
    window.resizeDocks([window.training.insight_dock], [int(window.height() * 0.5)], Qt.Orientation.Vertical)


def _explore(window, what: str) -> None:
    _insight(window, "explore")
    view = window.training.insight.explore
    view.channel.setValue(5)
    if what == "nearest":
        view.sample.setValue(7)
        view.find_nearest()
    else:
        view.dream() if what == "dream" else view.find_patches()


def _named(window, name: str) -> str:
    return next(nid for nid, n in window.document.graph.nodes.items() if n.name == name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "start"))
