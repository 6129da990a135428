"""Train the network of a Net Designer training package, on one machine or on many.

    python train.py                                   # the CPU, or one GPU
    torchrun --standalone --nproc-per-node=4 train.py  # four processes (GPUs) of one machine
    torchrun --nnodes=2 --nproc-per-node=4 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 train.py

The folder holds ``model.py`` (the network; it normalizes its raw input itself), ``config.json``
(the project's data and training settings: edit them there), ``data.npz`` (the samples as the data
set gives them, with the training, validation and test split the window used) and ``project.json``
(the project, copied into the run folder so Net Designer can open the run).

Under torchrun every process trains a copy of the network with PyTorch's DistributedDataParallel
(NCCL on GPUs, gloo on the CPU): a DistributedSampler deals each process its share of every global
batch (``batch_size`` in config.json, divided among the processes), the gradients are averaged, and
the losses and scores are summed over all processes. Process 0 alone writes the run folder
(``run/`` beside this file, or ``--out``) in the format Net Designer reads: ``summary.json``,
``metrics.csv``, ``batches.f32``, ``last.pt``, ``best.pt``, ``checkpoints/epoch-NNNN.pt`` and, at the
end, ``model.pt`` (weights for ``model.py``, which take raw data). Started again with the same
folder (torchrun does this after a failure), it goes on from the folder's ``last.pt``.

Needs only PyTorch and NumPy.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import importlib.util
import io
import json
import math
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

HERE = Path(__file__).resolve().parent
PACKAGE_FORMAT = "net-designer-package"
RUN_FORMAT, RUN_VERSION = "net-designer-run", 1
#: disk the kept epoch checkpoints may take; beyond it every other one is dropped (the newest stays)
CHECKPOINT_BUDGET = 256 * 2**20
EVAL_BATCH = 512
MIN_STD = 1e-8  # a constant channel is divided by 1, not by 0
EXIT_BAD_INPUT = 2
#: output block -> the target it learns (an array of data.npz) and the score reported first
HEADS = {
    "ClassificationOutput": ("label", "accuracy"),
    "BinaryOutput": ("binary", "accuracy"),
    "PerceptronOutput": ("binary", "accuracy"),
    "RegressionOutput": ("value", "r2"),
    "SegmentationOutput": ("mask", "iou"),
}
AUGMENT_OPTIONS = ("flip", "vflip", "shift", "rotation", "scale", "noise", "brightness", "contrast", "mixup",
                   "cutout", "elastic")
GEOMETRIC = ("flip", "shift", "rotation", "scale", "elastic")  # the options of the one warp
IMAGE_ONLY = ("flip", "vflip", "shift", "rotation", "scale", "elastic", "cutout")
ELASTIC_GRID = 3  # the coarse grid of random offsets is 3 × 3, as in the U-Net paper


class BadInput(Exception):
    """An argument, file or setting that cannot be used; the message says which and why."""


class TrainingFailed(Exception):
    """Training cannot go on (it diverged); the message says what to try."""


# ---------------------------------------------------------------------- arguments and settings
class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse's name
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see --help)\n")


def _positive(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog="train.py", description="Train the exported network (see the docstring at the top of train.py).")
    p.add_argument("--epochs", type=_positive, metavar="N", help="train until epoch N (default: config.json)")
    p.add_argument("--batch-size", type=_positive, metavar="N",
                   help="the global batch, divided among the processes (default: config.json)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the run folder (default: run/ beside train.py); one that has last.pt is continued")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                   help="go on from this checkpoint (a run folder's last.pt, or one from Net Designer's runs)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: config.json (auto: CUDA when there is one)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision, CUDA only (default: config.json's mixed_precision)")
    p.add_argument("--sync-bn", action="store_true",
                   help="BatchNorm statistics over the whole global batch, not each process's part (CUDA only)")
    return p.parse_args(argv)


def read_json(path: Path, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise BadInput(f"{path}: the {what} is missing (it belongs beside train.py)") from None
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: the {what} cannot be read ({exc})") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{path}: the {what} must hold a JSON object")
    return doc


def read_config(args: argparse.Namespace) -> dict:
    """config.json with the command line's overrides applied (epochs, batch size, device, AMP)."""
    config = read_json(HERE / "config.json", "settings file")
    if config.get("format") != PACKAGE_FORMAT:
        raise BadInput(f"{HERE / 'config.json'}: not the settings of a Net Designer training package")
    training = config.get("training")
    if not isinstance(training, dict) or not isinstance(config.get("head"), dict) or not isinstance(config.get("data"), dict):
        raise BadInput(f"{HERE / 'config.json'}: it needs the objects 'data', 'training' and 'head'")
    if config["head"].get("type") not in HEADS:
        raise BadInput(f"config.json: head.type must be one of {', '.join(HEADS)}")
    classes = config["head"].get("classes")
    if config["head"]["type"] == "SegmentationOutput" and (isinstance(classes, bool) or not isinstance(classes, int)
                                                           or classes < 1):
        raise BadInput(f"config.json: head.classes (the segmentation's class maps) must be a whole number of at "
                       f"least 1, not {classes!r}")
    for key in ("epochs", "batch_size"):
        value = training.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadInput(f"config.json: training.{key} must be a whole number of at least 1, not {value!r}")
    lr = training.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise BadInput(f"config.json: training.lr must be a positive number, not {lr!r}")
    unknown = set(config["data"].get("augment") or {}) - set(AUGMENT_OPTIONS)
    if unknown:
        raise BadInput(f"config.json: data.augment has unknown options {', '.join(sorted(unknown))}")
    training["epochs"] = args.epochs or training["epochs"]
    training["batch_size"] = args.batch_size or training["batch_size"]
    training["device"] = args.device or training.get("device", "auto")
    if args.amp is not None:
        training["mixed_precision"] = args.amp
    return config


# ---------------------------------------------------------------------- processes
class Cluster:
    """This process's place in the job: rank, number of processes, device; a job of one without torchrun."""

    def __init__(self, device_choice: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
        if cuda and not torch.cuda.is_available():
            raise BadInput("--device cuda: this machine has no CUDA GPU (use --device cpu)")
        if cuda and local_rank >= torch.cuda.device_count():
            raise BadInput(f"process {local_rank} of this machine needs GPU {local_rank}, and it has "
                           f"{torch.cuda.device_count()}: give torchrun --nproc-per-node={torch.cuda.device_count()}")
        self.device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            dist.init_process_group("nccl" if cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        name = f"CUDA: {torch.cuda.get_device_name(self.device)}" if self.device.type == "cuda" else "CPU"
        return name if self.world == 1 else f"{name}, {self.world} processes"

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over all processes."""
        if self.world > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def from_main(self, value):
        """Process 0's ``value``, on every process (any picklable object)."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value) -> list:
        """Every process's ``value``, in rank order."""
        if self.world == 1:
            return [value]
        out = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def close(self) -> None:
        """Leave the process group together: a process tearing it down while another still talks to it
        can abort ("terminate called without an active exception"), as seen on a loaded machine."""
        if self.world > 1 and dist.is_initialized():
            try:
                dist.barrier()
            except Exception:  # noqa: BLE001 - another process already failed; its error is what matters
                pass
            dist.destroy_process_group()


def say(cluster: Cluster, text: str) -> None:
    """Print progress (process 0 only: the others would repeat it)."""
    if cluster.main:
        print(text, flush=True)


def say_error(text: str) -> None:
    """One line on stderr, from process 0 only (every process meets the same problem)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"train.py: {' '.join(text.split())}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- data
def load_data(config: dict, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The three splits of data.npz as (raw inputs, targets) on ``device``."""
    path = HERE / config["data"].get("file", "data.npz")
    key = HEADS[config["head"]["type"]][0]
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ("x", key, "train", "val", "test")}
    except FileNotFoundError:
        raise BadInput(f"{path}: the data file is missing (export the package again, or copy it beside train.py)") from None
    except KeyError as exc:
        raise BadInput(f"{path}: the data file has no array {exc} (export the package again)") from None
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: the data file cannot be read ({exc})") from None
    x = torch.from_numpy(arrays["x"].astype(np.float32, copy=False))
    y = torch.from_numpy(arrays[key])
    y = y.long() if key in ("label", "mask") else y.float()
    n = x.shape[0]
    splits = {}
    for name in ("train", "val", "test"):
        idx = torch.from_numpy(arrays[name].astype(np.int64))
        if idx.numel() and (idx.min() < 0 or idx.max() >= n):
            raise BadInput(f"{path}: the {name} indices point past the {n} samples")
        splits[name] = (x[idx].to(device), y[idx].to(device))
    if not len(splits["train"][0]):
        raise BadInput(f"{path}: the training split is empty")
    return splits


def fit_normalization(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population standard deviation per channel (images) or feature (vectors) of the training split."""
    x = x.double()
    dims = [d for d in range(x.dim()) if d != 1]
    mean = x.mean(dim=dims)
    std = x.std(dim=dims, unbiased=False)
    std = torch.where(std < MIN_STD, torch.ones_like(std), std)
    return mean.float(), std.float()


def data_info(x_train: torch.Tensor, config: dict) -> dict:
    """What the model expects, for the checkpoint: input shape, dtype, raw value range, class names."""
    info = {"input_shape": list(x_train.shape[1:]), "dtype": "float32", "classes": config["data"].get("class_names")}
    if x_train.numel():
        info.update(input_min=float(x_train.min()), input_max=float(x_train.max()))
    return info


class Augment:
    """Random changes to training batches, as Net Designer makes them (its engine/data/augment.py).

    They work on normalized batches: padding is then the training mean, and ``noise`` and
    ``brightness`` are in standard deviations. ``vflip`` mirrors top-bottom by indexing; the other
    geometric options are one warp per batch (an affine grid plus, with ``elastic``, a bicubic-upsampled
    3 × 3 grid of random offsets); a segmentation's masks move with their images (nearest class,
    background where they leave the frame). ``cutout`` erases one square per image to 0 (the mean) last,
    before mixup, and leaves the masks alone.
    """

    def __init__(self, spec: dict) -> None:
        self.spec = {k: float(v) for k, v in (spec or {}).items() if v}

    def __bool__(self) -> bool:
        return bool(self.spec)

    def __call__(self, x: torch.Tensor, g: torch.Generator, masks: torch.Tensor | None = None):
        """The augmented batch, the mixup pairing ``(perm, lam)`` (None without mixup) and the moved ``masks``."""
        if self.spec.get("vflip"):
            chosen = (torch.rand(x.shape[0], generator=g, device=g.device) < 0.5).to(x.device)
            x = torch.where(chosen[:, None, None, None], x.flip(-2), x)
            if masks is not None:
                masks = torch.where(chosen[:, None, None].to(masks.device), masks.flip(-2), masks)
        if any(k in self.spec for k in GEOMETRIC):
            x, masks = self._warp(x, g, masks)
        x = self._photometric(x, g)
        if "cutout" in self.spec:
            x = self._cutout(x, g)
        if self.spec.get("mixup") and x.shape[0] > 1:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device))
            lam = float(np.random.default_rng(seed).beta(self.spec["mixup"], self.spec["mixup"]))
            perm = torch.randperm(x.shape[0], generator=g, device=g.device).to(x.device)
            return lam * x + (1.0 - lam) * x[perm], (perm, lam), masks
        return x, None, masks

    @staticmethod
    def _uniform(n: int, half: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
        return ((torch.rand(n, generator=g, device=g.device) * 2 - 1) * half).to(device, torch.float32)

    def _warp(self, x: torch.Tensor, g: torch.Generator, masks: torch.Tensor | None):
        n, _, h, w = x.shape
        dev = x.device
        ones = torch.ones(n, device=dev)
        flip = ones
        if self.spec.get("flip"):
            flip = torch.where(torch.rand(n, generator=g, device=g.device).to(dev) < 0.5, -ones, ones)
        angle = self._uniform(n, self.spec.get("rotation", 0.0), g, dev) * (math.pi / 180)
        scale = 1 + self._uniform(n, self.spec.get("scale", 0.0), g, dev)
        shift = torch.stack([self._uniform(n, self.spec.get("shift", 0.0), g, dev) * 2 for _ in range(2)], dim=1)
        cos, sin = angle.cos(), angle.sin()
        # Forward map in grid coordinates: scale, rotate and flip about the centre (angles kept true on a
        # non-square image), then shift; grid_sample needs its inverse (output pixel -> input pixel).
        fwd = torch.stack([
            torch.stack([scale * cos * flip, -scale * sin * h / w], dim=1),
            torch.stack([scale * sin * flip * w / h, scale * cos], dim=1),
        ], dim=1)
        inv = torch.linalg.inv(fwd)
        theta = torch.cat([inv, -(inv @ shift[:, :, None])], dim=2)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        if "elastic" in self.spec:
            # One offset per point of a coarse grid, of std elastic × the image size (2 · elastic in grid units).
            coarse = torch.randn(n, 2, ELASTIC_GRID, ELASTIC_GRID, generator=g, device=g.device)
            field = F.interpolate(coarse * (2 * self.spec["elastic"]), size=(h, w), mode="bicubic",
                                  align_corners=True)
            grid = grid + field.permute(0, 2, 3, 1).to(dev, grid.dtype)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if masks is not None:
            moved = F.grid_sample(masks[:, None].to(grid.dtype), grid, mode="nearest", padding_mode="zeros",
                                  align_corners=False)
            masks = moved[:, 0].round().long()
        return x, masks

    def _cutout(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        side = max(1, math.floor(self.spec["cutout"] * min(h, w) + 0.5))  # halves round up
        top = (torch.rand(n, generator=g, device=g.device) * (h - side + 1)).long().clamp(max=h - side).to(x.device)
        left = (torch.rand(n, generator=g, device=g.device) * (w - side + 1)).long().clamp(max=w - side).to(x.device)
        rows = torch.arange(h, device=x.device)[None, :, None]
        cols = torch.arange(w, device=x.device)[None, None, :]
        inside = ((rows >= top[:, None, None]) & (rows < top[:, None, None] + side)
                  & (cols >= left[:, None, None]) & (cols < left[:, None, None] + side))
        return x.masked_fill(inside[:, None], 0.0)

    def _photometric(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        per_sample = (n,) + (1,) * (x.dim() - 1)
        if "contrast" in self.spec:
            factor = (1 + self._uniform(n, self.spec["contrast"], g, dev)).view(per_sample).to(x.dtype)
            mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
            x = (x - mean) * factor + mean
        if "brightness" in self.spec:
            x = x + self._uniform(n, self.spec["brightness"], g, dev).view(per_sample).to(x.dtype)
        if "noise" in self.spec:
            x = x + self.spec["noise"] * torch.randn(x.shape, generator=g, device=g.device).to(dev, x.dtype)
        return x


# ---------------------------------------------------------------------- model, loss, optimizer
def load_model(config: dict) -> torch.nn.Module:
    """A fresh instance of the network class in model.py."""
    path = HERE / config.get("model", {}).get("file", "model.py")
    name = config.get("model", {}).get("class", "")
    spec = importlib.util.spec_from_file_location("model", path)
    if spec is None or not path.is_file():
        raise BadInput(f"{path}: the network's file is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not isinstance(getattr(module, name, None), type):
        raise BadInput(f"{path}: there is no class {name!r} (config.json's model.class)")
    return getattr(module, name)()


# ---------------------------------------------------------------------- segmentation masks
# NOTE: crop_margins and crop_to_output are Net Designer's own (engine/datacheck.py, engine/training/objectives.py),
# written in here by engine/package.py at the template's mark, so a package cuts a segmentation's masks to its
# output exactly as the window does.
# @crop_to_output@


# ---------------------------------------------------------------------- the losses
# NOTE: perceptron_criterion and loss_inputs are Net Designer's own (engine/training/objectives.py), written in
# here by engine/package.py at the template's marks, so a package trains with the output block's loss exactly
# as the window does.
# @perceptron_criterion@
# @loss_inputs@

#: how a chosen loss may meet the target (config.json's head.loss_meets; see loss_inputs)
LOSS_MEETS = ("indices", "one_hot", "sigmoid", "shaped")


def loss_choice(head: dict) -> tuple | None:
    """(loss function, how it meets the target) that config.json's head names, or None for the block's default.

    An output block whose loss setting is not its default writes head.loss_function (a torch.nn.functional
    function) and head.loss_meets into config.json.
    """
    name, meets = head.get("loss_function"), head.get("loss_meets")
    if name is None and meets is None:
        return None
    function = getattr(F, name, None) if isinstance(name, str) and not name.startswith("_") else None
    if name == "perceptron_criterion":
        function = perceptron_criterion  # noqa: F821 - written in by engine/package.py
    if not callable(function):
        raise BadInput(f"config.json: head.loss_function must name a loss of torch.nn.functional, not {name!r}")
    if meets not in LOSS_MEETS:
        raise BadInput(f"config.json: head.loss_meets must be one of {', '.join(LOSS_MEETS)}, not {meets!r}")
    return function, meets


def head_loss(kind: str, out: torch.Tensor, target: torch.Tensor, choice: tuple | None = None) -> torch.Tensor:
    """The mean loss of a batch: the ``choice`` of :func:`loss_choice`, else the block's default: cross-entropy
    (per pixel against masks cropped to the output's maps, for a segmentation), binary cross-entropy on logits,
    the perceptron criterion, or mean squared error."""
    if choice is not None:
        if kind == "SegmentationOutput":
            target = crop_to_output(target, out.shape[-2:])  # noqa: F821 - written in by engine/package.py
        function, meets = choice
        return function(*loss_inputs(meets, out, target))  # noqa: F821 - written in by engine/package.py
    if kind == "ClassificationOutput":
        return F.cross_entropy(out, target)
    if kind == "SegmentationOutput":
        return F.cross_entropy(out, crop_to_output(target, out.shape[-2:]))  # noqa: F821 - written in by engine/package.py
    if kind == "BinaryOutput":
        return F.binary_cross_entropy_with_logits(out, target.view_as(out))
    if kind == "PerceptronOutput":
        return perceptron_criterion(out, target.view_as(out))  # noqa: F821 - written in by engine/package.py
    return F.mse_loss(out, target.view_as(out))


def batch_loss(head: dict, out: torch.Tensor, target: torch.Tensor, mix=None) -> torch.Tensor:
    """The training loss; under mixup ``lam·L(y) + (1 − lam)·L(y[perm])``."""
    kind, weight, choice = head["type"], float(head.get("weight", 1.0)), loss_choice(head)
    loss = head_loss(kind, out.float(), target, choice)
    if mix is not None:
        perm, lam = mix
        loss = lam * loss + (1 - lam) * head_loss(kind, out.float(), target[perm], choice)
    return loss if weight == 1.0 else weight * loss


def make_optimizer(params, cfg: dict) -> torch.optim.Optimizer:
    """The optimizer config.json names; PyTorch's fused (or multi-tensor) kernel where it has one."""
    params = list(params)
    name = cfg.get("optimizer", "adam")
    if name == "sgd":
        momentum = float(cfg.get("momentum", 0.0))
        cls, kw = torch.optim.SGD, {"momentum": momentum, "nesterov": bool(cfg.get("nesterov")) and momentum > 0}
    elif name == "rmsprop":
        cls, kw = torch.optim.RMSprop, {}
    elif name == "adagrad":
        cls, kw = torch.optim.Adagrad, {}
    elif name == "adam":
        cls, kw = torch.optim.Adam, {}
    else:
        raise BadInput(f"config.json: training.optimizer must be sgd, adam, rmsprop or adagrad, not {name!r}")
    kw.update(lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 0.0)))
    for fast in ({"fused": True}, {"foreach": True}):
        try:
            return cls(params, **kw, **fast)
        except (RuntimeError, TypeError, ValueError):
            pass  # NOTE: no such kernel for this optimizer or device; the plain form follows
    return cls(params, **kw)


def make_scheduler(optimizer, cfg: dict, epochs: int):
    """The learning-rate schedule (None for a constant rate), stepped once per epoch."""
    schedule, gamma, step_size = cfg.get("schedule", "none"), float(cfg.get("gamma", 0.1)), int(cfg.get("step_size", 10))
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if schedule == "cosine":
        # NOTE: the closed form of cosine annealing to 0 over the run's epochs, so a run continued for more
        # epochs goes on along the cosine of its new length.
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, max(1, epochs)) / max(1, epochs))))
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=gamma, patience=max(1, step_size // 3))
    if schedule == "none":
        return None
    raise BadInput(f"config.json: training.schedule must be none, step, cosine or plateau, not {schedule!r}")


NORMALIZATION = ("input_mean", "input_std")


def trained_weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights as Net Designer's checkpoints keep them: without the normalization, which is kept apart."""
    return {k: v for k, v in net.state_dict().items() if k not in NORMALIZATION}


def load_trained_weights(net: torch.nn.Module, weights: dict, where: Path | str) -> None:
    """Put checkpoint weights (with or without the normalization buffers) into ``net``."""
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if unexpected or set(missing) - set(NORMALIZATION):
        raise BadInput(f"{where}: this checkpoint does not fit the network in model.py")


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ---------------------------------------------------------------------- evaluation
class Scores:
    """Sums of the loss and a head's metrics over batches; summed over processes, then divided once."""

    def __init__(self, kind: str, device: torch.device, classes: int = 0) -> None:
        self.kind = kind
        # loss·rows, rows, values, correct, |error|, error², Σy, Σy², then a segmentation's confusion
        # matrix (true class × predicted class, flattened): one tensor, so one all_reduce sums it all
        self.classes = classes if kind == "SegmentationOutput" else 0
        self.sums = torch.zeros(8 + self.classes**2, dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, loss: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> None:
        s, rows = self.sums, out.shape[0]
        s[0] += float(loss) * rows
        s[1] += rows
        if self.kind == "ClassificationOutput":
            s[2] += target.numel()
            s[3] += (out.argmax(1) == target).sum()
        elif self.kind == "SegmentationOutput":
            target, pred, k = crop_to_output(target, out.shape[-2:]), out.argmax(1), self.classes  # noqa: F821
            s[2] += target.numel()
            s[3] += (pred == target).sum()
            s[8:] += torch.bincount((target * k + pred).reshape(-1), minlength=k * k)[: k * k].to(s.dtype)
        elif self.kind in ("BinaryOutput", "PerceptronOutput"):  # NOTE: a score above 0 predicts 1 in both
            s[2] += out.numel()
            s[3] += ((out > 0) == (target.view_as(out) > 0.5)).sum()
        else:
            t, o = target.view_as(out).float(), out.float()
            s[2] += t.numel()
            s[4] += (o - t).abs().sum()
            s[5] += ((o - t) ** 2).sum()
            s[6] += t.sum()
            s[7] += (t**2).sum()

    def result(self) -> tuple[float | None, dict[str, float]]:
        """(mean loss, metrics) of everything added; (None, {}) when nothing was."""
        loss_rows, rows, n, correct, abs_err, sq_err, sum_y, sum_y2 = self.sums[:8].tolist()
        if rows == 0:
            return None, {}
        if self.kind == "SegmentationOutput":
            return loss_rows / rows, {"pixel_accuracy": correct / n, "iou": self.mean_iou()}
        if self.kind != "RegressionOutput":
            return loss_rows / rows, {"accuracy": correct / n}
        sst = sum_y2 - n * (sum_y / n) ** 2
        return loss_rows / rows, {"mae": abs_err / n, "r2": 1.0 - sq_err / sst if sst > 1e-12 else 0.0}

    def mean_iou(self) -> float:
        """Mean intersection over union of the classes that occur (in truth or prediction)."""
        c = self.sums[8:].reshape(self.classes, self.classes)
        inter = c.diag()
        union = c.sum(0) + c.sum(1) - inter
        present = union > 0
        return float((inter[present] / union[present]).mean()) if present.any() else 0.0


def evaluate(model, split, head, cluster: Cluster, amp: bool) -> tuple[float | None, dict[str, float]]:
    """Mean loss and metrics of ``model`` on a split, each process taking every world-th sample.

    NOTE: not a DistributedSampler: it would repeat samples to even out the processes' shares and so
    count them twice. The sums are exact; only their order differs from one process's.
    """
    x, y = split
    x, y = x[cluster.rank :: cluster.world], y[cluster.rank :: cluster.world]
    scores = Scores(head["type"], x.device, int(head.get("classes") or 0))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_BATCH):
            xb, yb = x[i : i + EVAL_BATCH], y[i : i + EVAL_BATCH]
            with autocast(x.device, amp):
                out = model(xb)
            scores.add(batch_loss(head, out, yb), out.float(), yb)
    model.train(was_training)
    cluster.sum(scores.sums)
    return scores.result()


def autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type) if amp else contextlib.nullcontext()


def sync_buffers(model: torch.nn.Module, cluster: Cluster) -> None:
    """Process 0's buffers (BatchNorm's running statistics) on every process, so all evaluate one network."""
    if cluster.world > 1:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


# ---------------------------------------------------------------------- the run folder
def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def write_atomic(path: Path, write) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then renamed over it: never half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_rows(folder: Path, last_epoch: int) -> list[dict]:
    """The rows of a run folder's metrics.csv up to ``last_epoch`` (numbers parsed; a cut-off last line left out)."""
    try:
        text = (folder / "metrics.csv").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    text = text[: text.rfind("\n") + 1]
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        parsed = {k: _number(v) for k, v in row.items() if k is not None}
        if isinstance(parsed.get("epoch"), int) and parsed["epoch"] <= last_epoch:
            rows.append(parsed)
    return rows


def _number(text):
    if text in ("", None):
        return None
    try:
        return float(text) if any(c in text for c in ".eEnN") else int(text)
    except ValueError:
        return text


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    return str(value)


def _plain(value):
    """A JSON-safe copy: no NaN or infinity (JSON has none)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunFolder:
    """The run as Net Designer reads it, written by process 0 as the run goes.

    At an epoch's end metrics.csv is replaced first, then the checkpoints, then summary.json, each
    atomically: a kill at any moment leaves a run that reads as it was after its last finished epoch.
    A ``.lock`` held while writing tells a live run from an interrupted one.
    """

    def __init__(self, folder: Path, snapshot: dict, epochs: int, history: list[dict], parent: dict | None,
                 resume_step: int | None, best_epoch: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checkpoints").mkdir(exist_ok=True)
        self._lock = _hold_lock(folder)
        self.rows = list(history)
        old = read_json(folder / "summary.json", "run summary") if (folder / "summary.json").is_file() else {}
        self.doc = {
            "format": RUN_FORMAT, "version": RUN_VERSION, "label": old.get("label") or folder.name,
            "name": str(snapshot.get("name") or "Untitled"), "kind": "train", "created": old.get("created") or _now(),
            "status": "running", "epochs": epochs, "epochs_run": self.rows[-1]["epoch"] if self.rows else 0,
            "best_epoch": best_epoch, "parent": parent or old.get("parent"),
            "message": "", "summary": {}, "pid": os.getpid(),
        }
        batches = folder / "batches.f32"
        keep = 4 * (resume_step or 0)
        if batches.exists():
            with open(batches, "r+b") as fh:
                fh.truncate(min(keep, os.fstat(fh.fileno()).st_size))
        write_text(folder / "project.json", json.dumps(snapshot, indent=2, ensure_ascii=False) + "\n")
        self._write_metrics()
        self.update()

    def epoch(self, row: dict, losses: list[float]) -> None:
        """One finished epoch: its metrics row and every batch's loss."""
        with open(self.folder / "batches.f32", "ab") as fh:
            fh.write(struct.pack(f"<{len(losses)}f", *losses))
        self.rows.append(row)
        self._write_metrics()
        self.doc["epochs_run"] = row["epoch"]

    def checkpoint(self, state: dict, epoch: int, best: bool) -> None:
        """``checkpoints/epoch-NNNN.pt``, linked as ``last.pt`` (and ``best.pt``); old ones thinned to the budget."""
        kept = self.folder / "checkpoints" / f"epoch-{epoch:04d}.pt"
        kept.unlink(missing_ok=True)  # NOTE: never write into a file that is also best.pt
        write_atomic(kept, lambda tmp: torch.save(state, tmp))
        _link(kept, self.folder / "last.pt")
        if best:
            _link(kept, self.folder / "best.pt")
            self.doc["best_epoch"] = epoch
        files = sorted((self.folder / "checkpoints").glob("epoch-*.pt"))
        stride = 2
        while len(files) > 1 and len(files) * kept.stat().st_size > CHECKPOINT_BUDGET:
            for f in files:
                number = int(f.stem.removeprefix("epoch-"))
                if number != epoch and number % stride:
                    f.unlink(missing_ok=True)
            files, stride = sorted((self.folder / "checkpoints").glob("epoch-*.pt")), stride * 2

    def update(self, **fields) -> None:
        self.doc.update(_plain(fields))
        self.doc["updated"] = _now()
        write_text(self.folder / "summary.json", json.dumps(self.doc, indent=2, ensure_ascii=False) + "\n")

    def finish(self, status: str, summary: dict | None = None, message: str = "") -> None:
        self.update(status=status, message=message, **({"summary": summary} if summary is not None else {}))
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _write_metrics(self) -> None:
        columns = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        if columns:
            out = csv.writer(buf, lineterminator="\n")
            out.writerow(columns)
            for row in self.rows:
                out.writerow([_cell(row.get(c)) for c in columns])
        write_text(self.folder / "metrics.csv", buf.getvalue())


def _link(src: Path, dst: Path) -> None:
    """``dst`` becomes ``src``'s content: a hard link where the file system has them, else a copy."""
    tmp = dst.with_name(f".{dst.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)


def _hold_lock(folder: Path):
    """Hold ``.lock`` while this process writes the run (None where there are no such locks)."""
    try:
        import fcntl
    except ImportError:  # Windows: the status alone tells
        return None
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise BadInput(f"{folder}: another process is writing this run") from None
    return fd


# ---------------------------------------------------------------------- where the run starts
def plan_start(args: argparse.Namespace) -> tuple[Path, Path | None, str]:
    """(run folder, checkpoint to go on from or None, how it relates: "new", "continue" or "fork")."""
    resume = args.resume
    if resume is not None and resume.is_dir():
        resume = resume / "last.pt"
    if resume is not None and not resume.is_file():
        raise BadInput(f"--resume {args.resume}: no such checkpoint")
    if resume is None:
        out = args.out or HERE / "run"
        return (out, out / "last.pt", "continue") if (out / "last.pt").is_file() else (out, None, "new")
    home = _run_folder_of(resume)
    if args.out is None and home is not None and resume.name == "last.pt":
        return home, resume, "continue"
    out = args.out or HERE / "run"
    if home is not None and home.resolve() == out.resolve():
        return out, resume, "continue"
    if (out / "summary.json").is_file():
        raise BadInput(f"--out {out} already holds a run: give a new --out to start from {resume}")
    return out, resume, "fork" if home is not None else "new"


def _run_folder_of(checkpoint: Path) -> Path | None:
    folder = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    return folder if (folder / "summary.json").is_file() else None


def read_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged or unsafe file
        raise BadInput(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or not isinstance(state.get("epoch"), int):
        raise BadInput(f"{path}: not a training checkpoint (it needs the model's weights and an epoch number)")
    return state


# ---------------------------------------------------------------------- training
class Training:
    """One run of the package, on this process."""

    def __init__(self, args: argparse.Namespace, config: dict, cluster: Cluster) -> None:
        self.config, self.cluster = config, cluster
        self.cfg, self.head = config["training"], config["head"]
        self.epochs = int(self.cfg["epochs"])
        self.device = cluster.device
        self.amp = bool(self.cfg.get("mixed_precision")) and self.device.type == "cuda"
        if args.sync_bn and self.device.type != "cuda":
            raise BadInput("--sync-bn needs CUDA GPUs (NCCL); on the CPU each process normalizes its own part of the batch")
        self.splits = load_data(config, self.device)
        x_train = self.splits["train"][0]
        torch.manual_seed(int(self.cfg.get("seed", 0)))  # NOTE: before the model, so every process starts alike
        self.net = load_model(config).to(self.device)
        self.normalizer = None
        if config["data"].get("normalize"):
            if not hasattr(self.net, "input_mean"):
                raise BadInput("config.json normalizes the inputs, but model.py has no input_mean and input_std buffers")
            self._set_normalization(*fit_normalization(x_train))
        self.info = data_info(x_train, config)
        self.model = self.net
        if cluster.world > 1:
            if args.sync_bn:
                self.net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids)
            torch.manual_seed(int(self.cfg.get("seed", 0)) + cluster.rank)  # dropout differs between processes
        self.optimizer = make_optimizer(self.net.parameters(), self.cfg)
        self.scheduler = make_scheduler(self.optimizer, self.cfg, self.epochs)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.augment = Augment(config["data"].get("augment"))
        if self.augment and any(k in self.augment.spec for k in IMAGE_ONLY) and x_train.dim() != 4:
            used = ", ".join(k for k in IMAGE_ONLY if k in self.augment.spec)
            raise BadInput(f"config.json: data.augment's {used} work on pixels: they need images")
        self.aug_gen = torch.Generator(device=self.device).manual_seed(int(self.cfg.get("seed", 0)) + cluster.rank)
        n = x_train.shape[0]
        self.batch = min(int(self.cfg["batch_size"]), n)
        self.local_batch = max(1, self.batch // cluster.world)
        self.sampler = DistributedSampler(range(n), num_replicas=cluster.world, rank=cluster.rank, shuffle=True,
                                          seed=int(self.cfg.get("seed", 0)))
        self.start_epoch, self.best, self.best_state = 1, (math.inf, 0), None

    def _set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The statistics into the model's buffers (so it takes raw data) and into the checkpoints."""
        with torch.no_grad():
            self.net.input_mean.copy_(mean.view_as(self.net.input_mean))
            self.net.input_std.copy_(std.view_as(self.net.input_std))
        self.normalizer = {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """This process's batches of an epoch: its share of each global batch, in the sampler's order.

        A final batch of one sample is left out when the network has BatchNorm, which cannot normalize it.
        """
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler), dtype=torch.int64, device=self.device)
        chunks = list(order.split(self.local_batch))
        if chunks and len(chunks[-1]) == 1 and len(chunks) > 1 and has_batchnorm(self.net):
            chunks.pop()
        return chunks

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, epoch: int) -> dict:
        """Everything needed to go on after ``epoch``, in Net Designer's checkpoint format."""
        rng = {"torch": torch.get_rng_state(), "augment": self.aug_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        ranks = self.cluster.gather(rng)
        return {
            "model": trained_weights(self.net),  # NOTE: as Net Designer keeps it: the normalization is apart
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": epoch, "best_loss": self.best[0], "best_epoch": self.best[1],
            "normalizer": self.normalizer, "data": dict(self.info),
            "rng": {**rng, "ranks": ranks} if self.cluster.world > 1 else rng,
        }

    def restore(self, state: dict, path: Path, best_file: Path | None) -> None:
        """Go on from a checkpoint (read by process 0 and handed to every process)."""
        load_trained_weights(self.net, state["model"], path)
        norm = state.get("normalizer")
        if hasattr(self.net, "input_mean") and isinstance(norm, dict) and norm.get("mean"):
            self._set_normalization(torch.tensor(norm["mean"]), torch.tensor(norm["std"]))
        try:
            if state.get("optimizer"):
                self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler"):
                self.scheduler.load_state_dict(state["scheduler"])
            if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
                # NOTE: the saved rate is the cosine's end when the run was shorter; a longer run goes on
                # along the cosine of its new length, from the rate it gives this epoch.
                for group, base, rate in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                             self.scheduler.lr_lambdas):
                    group["lr"] = base * rate(self.scheduler.last_epoch)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise BadInput(f"{path}: its optimizer or schedule does not fit config.json's ({exc})") from None
        rng = state.get("rng") or {}
        ranks = rng.get("ranks")
        rng = ranks[self.cluster.rank] if isinstance(ranks, list) and len(ranks) == self.cluster.world else rng
        if self.cluster.world == 1 or isinstance(ranks, list):
            if isinstance(rng.get("torch"), torch.Tensor):
                torch.set_rng_state(rng["torch"])
            if isinstance(rng.get("augment"), torch.Tensor):
                self.aug_gen.set_state(rng["augment"])
            if self.device.type == "cuda" and isinstance(rng.get("cuda"), torch.Tensor):
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.start_epoch = state["epoch"] + 1
        self.best = (float(state.get("best_loss", math.inf)), int(state.get("best_epoch", 0)))
        if best_file is not None and self.best[1]:
            kept = self.cluster.from_main(_best_weights(best_file, self.best[1]) if self.cluster.main else None)
            self.best_state = kept

    # ------------------------------------------------------------------ the loop
    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mix = None
        masks = y if self.head["type"] == "SegmentationOutput" else None
        if self.augment and self.normalizer is not None:
            # NOTE: augment in the normalized space, as the window does (padding is then the training mean),
            # and hand the model raw values again, since it normalizes them itself.
            mean, std = self.net.input_mean, self.net.input_std
            x, mix, masks = self.augment((x - mean) / std, self.aug_gen, masks)
            x = x * std + mean
        elif self.augment:
            x, mix, masks = self.augment(x, self.aug_gen, masks)
        y = masks if masks is not None else y
        with autocast(self.device, self.amp):
            out = self.model(x)
            loss = batch_loss(self.head, out, y, mix)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def train_epoch(self, epoch: int) -> list[float]:
        """One epoch; every global batch's loss (the mean over the processes' parts)."""
        self.model.train()
        x, y = self.splits["train"]
        losses = torch.stack([self.step(x[idx], y[idx]) for idx in self.batches(epoch)]).float()
        losses = self.cluster.sum(losses) / self.cluster.world
        values = losses.tolist()
        if not all(map(math.isfinite, values)):
            raise TrainingFailed(f"the loss became {'NaN' if any(map(math.isnan, values)) else 'infinite'} in epoch "
                               f"{epoch}: training diverged; lower training.lr in config.json (now {self.cfg['lr']})")
        return values

    def schedule(self, monitored: float) -> None:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            self.scheduler.step()


def _best_weights(best_file: Path, best_epoch: int) -> dict | None:
    """The best epoch's weights from the run's best.pt, if it is that epoch's (for restore_best)."""
    try:
        state = torch.load(best_file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - no best checkpoint: the best weights are found again as the run goes
        return None
    return state["model"] if isinstance(state, dict) and state.get("epoch") == best_epoch else None


def open_run(args: argparse.Namespace, t: Training, cluster: Cluster) -> tuple[RunFolder | None, list[dict]]:
    """Decide (on process 0) where the run goes and from which checkpoint; every process takes it up."""
    plan = None
    if cluster.main:
        try:
            out, resume, how = plan_start(args)
            state = read_checkpoint(resume) if resume is not None else None
            plan = ("ok", out, resume, how, state)
        except BadInput as exc:
            plan = ("bad", str(exc))
    plan = cluster.from_main(plan)
    if plan[0] == "bad":
        raise BadInput(plan[1])
    _, out, resume, how, state = plan
    history: list[dict] = []
    parent = None
    if state is not None:
        home = _run_folder_of(resume)
        t.restore(state, resume, home / "best.pt" if how == "continue" and home is not None else None)
        if t.start_epoch > t.epochs:
            raise BadInput(f"{resume} is the checkpoint of epoch {t.start_epoch - 1}: give --epochs with more than "
                           f"{t.start_epoch - 1} to train on (now {t.epochs}), or --out a new folder")
        if how in ("continue", "fork") and cluster.main:
            history = read_rows(home, state["epoch"])
        if how == "fork":
            parent = {"run": home.name, "epoch": state["epoch"]}
    if not cluster.main:
        return None, history
    snapshot = read_json(HERE / "project.json", "project file")
    snapshot["training"] = {**snapshot.get("training", {}), **{k: v for k, v in t.cfg.items()}}
    step = history[-1].get("step") if history else None
    if how == "fork" and history:
        _copy_batches(_run_folder_of(resume), out, step)
    run = RunFolder(out, snapshot, t.epochs, history, parent, step if how != "new" else 0, t.best[1])
    return run, history


def _copy_batches(source: Path, out: Path, steps) -> None:
    out.mkdir(parents=True, exist_ok=True)
    try:
        data = (source / "batches.f32").read_bytes()[: 4 * int(steps or 0)]
    except OSError:
        data = b""
    (out / "batches.f32").write_bytes(data)


def train(args: argparse.Namespace, config: dict, cluster: Cluster) -> int:
    """The whole run: set up, train the epochs, test; the run folder written as it goes."""
    t = Training(args, config, cluster)
    run, history = open_run(args, t, cluster)
    sizes = {name: len(split[0]) for name, split in t.splits.items()}
    say(cluster, f"training {config.get('name', 'the network')} on {cluster.describe()}: {sizes['train']} training, "
        f"{sizes['val']} validation, {sizes['test']} test samples; global batch {t.local_batch * cluster.world}"
        + (f" ({t.local_batch} per process)" if cluster.world > 1 else "")
        + (f"; going on after epoch {t.start_epoch - 1}" if t.start_epoch > 1 else ""))
    if t.batch % cluster.world:
        say(cluster, f"note: the batch of {t.batch} does not divide among {cluster.world} processes; each takes {t.local_batch}")
    per_epoch = len(t.batches(t.start_epoch))
    step = history[-1]["step"] if history and isinstance(history[-1].get("step"), int) else (t.start_epoch - 1) * per_epoch
    if run is not None:
        run.update(device=cluster.describe(), batches_per_epoch=per_epoch, data=t.info, processes=cluster.world)
    started = time.perf_counter()
    try:
        status = train_epochs(t, run, step)
        if t.cfg.get("restore_best", True) and t.cfg.get("early_stopping_patience") and t.best_state is not None:
            load_trained_weights(t.net, t.best_state, "the best epoch's weights")
        sync_buffers(t.net, cluster)
        test_loss, test = evaluate(t.net, t.splits["test"], t.head, cluster, t.amp)
    except KeyboardInterrupt:
        if run is not None:
            run.finish("stopped", None, "stopped by Ctrl+C; run the same command again to go on")
        raise
    except BaseException as exc:
        if run is not None:
            run.finish("failed", None, f"{type(exc).__name__}: {exc}")
        raise
    if run is not None:
        summary = {"stopped": False, "epochs_run": run.rows[-1]["epoch"], "best_epoch": t.best[1],
                   "test_loss": test_loss, "test": test, "seconds": time.perf_counter() - started,
                   "device": cluster.describe()}
        weights = {k: v.detach().cpu() for k, v in t.net.state_dict().items()}  # NOTE: loads on a machine without a GPU
        write_atomic(run.folder / "model.pt", lambda tmp: torch.save(weights, tmp))
        run.finish(status, summary)
        say(cluster, f"the run is in {run.folder} (open it in Net Designer: Runs, More, Open another run folder)")
    metric = HEADS[t.head["type"]][1]
    if test_loss is None:
        say(cluster, "no test split (data.test_fraction was 0): nothing to test")
    else:
        say(cluster, f"test {metric} {test[metric]:.4f}  (loss {test_loss:.4f}, {sizes['test']} samples)")
    return 0


def train_epochs(t: Training, run: RunFolder | None, step: int) -> str:
    """Train from ``t.start_epoch`` to the last epoch, or until early stopping; the run's status at the end."""
    cluster, patience = t.cluster, int(t.cfg.get("early_stopping_patience", 0))
    for epoch in range(t.start_epoch, t.epochs + 1):
        began = time.perf_counter()
        losses = t.train_epoch(epoch)
        step += len(losses)
        row = {"epoch": epoch, "step": step, "train_loss": sum(losses) / len(losses), "lr": t.optimizer.param_groups[0]["lr"]}
        sync_buffers(t.net, cluster)
        val_loss, val_metrics = evaluate(t.net, t.splits["val"], t.head, cluster, t.amp)
        row["val_loss"] = val_loss
        row.update({f"val_{k}": v for k, v in val_metrics.items()})
        row["seconds"] = time.perf_counter() - began
        monitored = val_loss if val_loss is not None else row["train_loss"]
        t.schedule(monitored)
        improved = monitored < t.best[0]
        if improved:
            t.best = (monitored, epoch)
            t.best_state = {k: v.detach().to("cpu", copy=True) for k, v in trained_weights(t.net).items()}
        state = t.checkpoint(epoch)  # NOTE: on every process: it gathers their random generators' states
        if run is not None:
            run.epoch(row, losses)
            run.checkpoint(state, epoch, improved)
            run.update(best_epoch=t.best[1], best_loss=t.best[0])
        shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith("val_") and v is not None)
        say(cluster, f"epoch {epoch:>3}/{t.epochs}  train_loss {row['train_loss']:.4f}  {shown}  "
            f"lr {row['lr']:.3g}  ({row['seconds']:.1f} s)")
        if patience and epoch - t.best[1] >= patience:
            say(cluster, f"early stopping at epoch {epoch}: the best validation loss was at epoch {t.best[1]}")
            return "early stop"
    return "finished"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cluster = None
    try:
        config = read_config(args)
        cluster = Cluster(config["training"]["device"])
        return train(args, config, cluster)
    except BadInput as exc:
        say_error(str(exc))
        return EXIT_BAD_INPUT
    except TrainingFailed as exc:
        say_error(f"training failed: {exc}")
        return 1
    except KeyboardInterrupt:
        print("train.py: stopped; run the same command again to go on from the last finished epoch", file=sys.stderr)
        return 130
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    sys.exit(main())
