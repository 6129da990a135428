"""A training package: the project as a folder that trains anywhere PyTorch runs, alone or under torchrun.

:func:`export_package` writes into a folder::

    model.py      the exported network (engine.export); when the project normalizes its inputs, with the
                  buffers ``input_mean`` / ``input_std``: the run's statistics when exported from a run,
                  else 0 and 1 until train.py fits them on the training split
    model.pt      (exported from a run) the run's weights for model.py
    train.py      resources/package/train.py with the engine's own mask crop, perceptron criterion and
                  loss inputs written in (:func:`train_script`):
                  needs only torch and numpy, runs as ``python train.py`` and under ``torchrun`` (DDP),
                  writes a run folder the window reads
    config.json   the project's data and training settings, the output block, the class names
    data.npz      the data as the project loads it: ``x`` (raw inputs), the output block's target
                  (``label``, ``binary``, ``value`` or ``mask``) and the sample indices ``train`` / ``val`` / ``test``
                  of :func:`engine.data.split_dataset`, so the package trains and tests on the window's samples
    project.json  the project, which train.py copies into its run folder

A package trains one Class, Binary, Perceptron, Regression or Segmentation output (a segmentation's masks cut
to the centre of smaller maps, as the window does: :func:`engine.training.objectives.crop_to_output`);
any other network is refused before a file is written, with the reason.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from engine.codegen import InputSpec
from engine.export import ExportError, export_code
from engine.fileio import atomic_write, atomic_write_text
from engine.layers import registry
from engine.project import Project, project_from_dict, project_to_dict, save_project

__all__ = ["PACKAGE_FORMAT", "PACKAGE_VERSION", "SUPPORTED_HEADS", "TRAIN_SCRIPT", "PackageError",
           "export_package", "split_indices", "train_script"]

PACKAGE_FORMAT = "net-designer-package"
PACKAGE_VERSION = 1
#: the script every package gets (its settings are in config.json), with the engine's mask crop written in
TRAIN_SCRIPT = Path(__file__).resolve().parent.parent / "resources" / "package" / "train.py"
#: the line of TRAIN_SCRIPT that :func:`train_script` replaces with the crop's functions
CROP_MARK = "# @crop_to_output@\n"
#: the line of TRAIN_SCRIPT that :func:`train_script` replaces with the perceptron's loss
PERCEPTRON_MARK = "# @perceptron_criterion@\n"
#: the line of TRAIN_SCRIPT that :func:`train_script` replaces with how a chosen loss meets the target
LOSS_MARK = "# @loss_inputs@\n"
#: the output blocks train.py knows how to train (one of them, alone): those tagged ``packaged``
SUPPORTED_HEADS = tuple(s.type_id for s in registry.all_specs() if "packaged" in s.tags)


class PackageError(ExportError):
    """The project cannot become a training package; the message says why and what to do."""


def export_package(
    project: Project,
    folder: str | Path,
    *,
    base_dir: Path | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    input_spec: InputSpec | None = None,
) -> list[Path]:
    """Write the training package of ``project`` into ``folder`` (made if missing); return the files written.

    ``base_dir`` is the project's folder (for data given by a relative path). ``state_dict`` and
    ``input_spec`` are a run's weights and inputs (:func:`engine.export.trained_weights`). Everything is
    checked and the data loaded before the first file is written. Raises PackageError (or CompileError,
    DataError) naming what does not fit.
    """
    from engine.data import Augmenter, load_dataset
    from engine.datacheck import require_data_fit
    from engine.export import generate_for
    folder = Path(folder)
    _check_folder(folder)
    head = _the_head(project)
    code = generate_for(project.graph, project.name)  # NOTE: raises CompileError for a network with errors
    input_shape = code.input_shapes[0]
    require_data_fit(project, base_dir)
    data = load_dataset(project.data, input_shape, base_dir=base_dir)
    key = head.spec.head.target
    if key not in data.targets:
        raise PackageError(f"'{head.name}' needs {head.spec.head.target_words}, but the '{project.data.dataset}' "
                           "data set has none: pick another data set or output block")
    augment = Augmenter(project.data.augment)
    augment.check(input_shape)
    splits = split_indices(data, project)
    spec = _model_inputs(project, data, splits[0], input_spec)

    folder.mkdir(parents=True, exist_ok=True)
    if state_dict is None:
        (folder / "model.pt").unlink(missing_ok=True)  # NOTE: an earlier export's weights do not belong to this one
    written = export_code(project.graph, folder / "model.py", name=project.name, state_dict=state_dict, input_spec=spec)
    data_path = folder / "data.npz"
    arrays = {"x": data.x.numpy(), key: data.targets[key].numpy(), "train": splits[0], "val": splits[1], "test": splits[2]}
    atomic_write(data_path, lambda tmp: _save_npz(tmp, arrays))
    config = package_config(project, code.class_name, head, data, splits)
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    snapshot = project_from_dict(project_to_dict(project), source=project.name or "<package>")
    snapshot.weights = None  # NOTE: model.pt holds the normalization buffers; the project's weights never do
    save_project(snapshot, folder / "project.json")
    atomic_write_text(folder / "train.py", train_script())
    return [*written, folder / "train.py", folder / "config.json", data_path, folder / "project.json"]


def train_script() -> str:
    """train.py's text: TRAIN_SCRIPT with the engine's own ``crop_margins``, ``crop_to_output``,
    ``perceptron_criterion`` and ``loss_inputs`` in it.

    NOTE: written in, not copied by hand: the package cuts masks to a smaller output (the U-Net paper's
    valid convolutions), scores a perceptron and feeds a chosen loss (softmax against one-hot targets, …)
    by the very functions the window trains and measures with. All four are standalone.
    """
    from engine.datacheck import crop_margins
    from engine.training.objectives import (
        crop_to_output,
        loss_inputs,
        perceptron_criterion,
    )

    text = TRAIN_SCRIPT.read_text(encoding="utf-8")
    parts = {CROP_MARK: (crop_margins, crop_to_output), PERCEPTRON_MARK: (perceptron_criterion,),
             LOSS_MARK: (loss_inputs,)}
    for mark, functions in parts.items():
        if text.count(mark) != 1:
            raise PackageError(f"{TRAIN_SCRIPT} has lost its line {mark.strip()!r}: reinstall Net Designer")
        text = text.replace(mark, "\n\n".join(inspect.getsource(f) for f in functions))
    return text


def _check_folder(folder: Path) -> None:
    """Refuse a file, or a folder that holds anything but an earlier package (whose files are replaced)."""
    if folder.exists() and not folder.is_dir():
        raise PackageError(f"{folder} is a file: a training package needs a folder")
    if not folder.is_dir() or _is_package(folder):
        return
    others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if others:
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        raise PackageError(f"{folder} already holds other files ({', '.join(others[:3])}{more}): choose an empty "
                           "folder, or the folder of an earlier training package to write it again")


def _is_package(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == PACKAGE_FORMAT


def _the_head(project: Project):
    """The network's one output block, if train.py can train it; refused in words otherwise."""
    graph = project.graph
    inputs = [n for n in graph.nodes.values() if n.spec.role == "input"]
    if len(inputs) != 1:
        raise PackageError(f"a training package needs exactly one Input block; this network has {len(inputs)}")
    heads = [n for n in graph.nodes.values() if n.spec.role == "head"]
    if not heads:
        raise PackageError("the network has no output block: add a Class, Binary, Perceptron, Regression or "
                           "Segmentation output after the last layer")
    if len(heads) > 1:
        names = ", ".join(repr(n.name) for n in heads)
        raise PackageError(f"a training package trains one output block, and this network has {len(heads)} ({names}): "
                           "train it in the window or with main.py train")
    head = heads[0]
    if head.type not in SUPPORTED_HEADS:
        raise PackageError(f"'{head.name}' is a {head.spec.title}: a training package trains a Class, Binary, "
                           "Perceptron, Regression or Segmentation output; train this network in the window or with "
                           "main.py train")
    return head


def split_indices(data, project: Project) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sample indices (ascending) of the training, validation and test sets that training makes.

    NOTE: :func:`engine.data.split_dataset` chooses from the targets alone; splitting a copy whose
    inputs are the sample numbers reads its choice back exactly, with no second copy of the rule.
    """
    from engine.data import Dataset, split_dataset

    numbered = Dataset(x=torch.arange(len(data)), targets=data.targets, classes=data.classes, name=data.name)
    cfg = project.data
    parts = split_dataset(numbered, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    return tuple(part.x.numpy().astype(np.int64) for part in parts)


def _model_inputs(project: Project, data, train: np.ndarray, given: InputSpec | None) -> InputSpec | None:
    """What model.py takes: a run's inputs as they are, else placeholders (mean 0, std 1) that train.py fits.

    A project that normalizes gets the buffers either way, so the checkpoint of every package run takes raw data.
    """
    if not project.data.normalize:
        if given is not None and given.mean is not None:
            raise PackageError("the weights come from a run that normalized its inputs, but the project now has "
                               "normalization off: turn it back on, or export without that run's weights")
        return given
    if given is not None and given.mean is not None:
        return given
    x = data.x[torch.as_tensor(train)]
    channels = int(data.x.shape[1])
    value_range = (float(x.min()), float(x.max())) if x.numel() else None
    classes = tuple(data.classes) if data.classes else None
    return InputSpec(mean=(0.0,) * channels, std=(1.0,) * channels, value_range=value_range, classes=classes)


def package_config(project: Project, class_name: str, head, data, splits) -> dict:
    """config.json: what train.py reads, and what a person edits to train differently."""
    declared = head.spec.head
    data_cfg = project.data.to_dict()
    data_cfg.pop("path", None)  # NOTE: the samples are in data.npz; where they came from stays in project.json
    return {
        "format": PACKAGE_FORMAT,
        "version": PACKAGE_VERSION,
        "name": project.name,
        "model": {"file": "model.py", "class": class_name, "input_shape": list(data.input_shape)},
        "head": {"type": head.type, "name": head.name, "target": declared.target,
                 **_loss_config(declared, head.params.get("loss")), "metric": declared.main,
                 "weight": float(head.params.get("weight", 1.0)), **_mask_classes(project, head)},
        "data": {"file": "data.npz", **data_cfg, "class_names": list(data.classes) if data.classes else None,
                 "split_sizes": {name: int(len(idx)) for name, idx in zip(("train", "val", "test"), splits)}},
        "training": project.training.to_dict(),
    }


def _loss_config(declared, key: str | None) -> dict:
    """config.json's loss of the head: its words, and the function and how it meets the target when the block's
    loss setting is not its default (train.py trains the default without them, as older packages did)."""
    choice = declared.loss_choice(key)
    if choice == declared.default_loss:
        return {"loss": choice.words}
    return {"loss": choice.words, "loss_function": choice.function, "loss_meets": choice.meets}


def _mask_classes(project: Project, head) -> dict:
    """``{"classes": k}``, the class maps a segmentation output gives (train.py sizes its IoU counts by it); else {}."""
    if head.spec.head.target != "mask":
        return {}
    from engine.analysis import analyze

    return {"classes": int(analyze(project.graph).nodes[head.id].in_shapes[0][0])}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:  # NOTE: a file object: given a name, numpy would add ".npz" to the temporary's
        np.savez(fh, **arrays)
