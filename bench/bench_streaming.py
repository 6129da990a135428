"""Streaming throughput: the trainer on an image folder streamed from disk against a hand-written DataLoader loop.

The benchmark makes a folder of 50,000 RGB 32×32 PNG images in 10 classes (once: it is kept
in a cache folder outside the repository, ``$NET_DESIGNER_BENCH_CACHE`` or the system's temp
folder), then trains LeNet-5 (3 input channels) on it for one epoch through the trainer's
streaming path (``data.memory_budget_gib`` below the folder's size, so it streams) and one
epoch of a loop as the PyTorch tutorials write it: a ``Dataset`` that opens each PNG with
Pillow, a ``DataLoader`` with the same workers, batch size and pinned memory, normalization in
the workers, and the same fused Adam step (the data path is what is compared). Setup (listing
the folder; the trainer's pass that fits the normalization) is left out of the timing.

The two go in lockstep, as in ``bench_training.py``: an epoch of each, then (``--repeats``)
another of each in the reverse order; the ratio is the median of the epochs' speed ratios
(target >= 0.95). Peak resident memory is printed for this process and for the largest worker
process: it stays bounded, whatever the folder's size.

Run: python bench/bench_streaming.py [--quick] [--images N] [--workers N] [--repeats N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from bench.bench_training import lockstep  # noqa: E402
from engine.config import DataConfig  # noqa: E402
from engine.data.streaming import worker_count  # noqa: E402
from engine.templates import load_template  # noqa: E402
from engine.training.events import EpochDone, Failed, Started  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402

FULL_IMAGES = 50_000
QUICK_IMAGES = 2_000
CLASSES = 10
SIDE = 32
BATCH = 64


def cache_root() -> Path:
    return Path(os.environ.get("NET_DESIGNER_BENCH_CACHE") or Path(tempfile.gettempdir()) / "net-designer-bench")


def make_folder(images: int, root: Path | None = None) -> Path:
    """A folder of ``images`` PNGs in :data:`CLASSES` class subfolders, made once and then reused.

    Each class has its own mean colour, so the network has something to learn.
    """
    from PIL import Image

    folder = (root or cache_root()) / f"images-{images}-{SIDE}px"
    done = folder / ".complete"
    if done.is_file():
        return folder
    rng = np.random.default_rng(0)
    tint = rng.integers(40, 215, (CLASSES, 3))
    for k in range(CLASSES):
        (folder / f"class{k}").mkdir(parents=True, exist_ok=True)
    for i in range(images):
        k = i % CLASSES
        pixels = np.clip(rng.normal(tint[k], 40, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"class{k}" / f"{i:06d}.png")
    done.write_text("")
    return folder


def folder_project(folder: Path, device: str, workers: int):
    """LeNet-5 with 3 input channels over ``folder``, streamed (the budget is below the folder's size)."""
    project = load_template("lenet5")
    project.graph.set_params("n1", {"channels": 3})
    data = project.data
    data.dataset, data.path, data.augment = "image_folder", str(folder), {}
    data.val_fraction = data.test_fraction = 0.0  # one epoch of training on each side, nothing else
    data.memory_budget_gib, data.workers = 0.0, workers
    training = project.training
    training.epochs, training.batch_size, training.device, training.schedule = 1, BATCH, device, "none"
    project.probes.enabled = False
    return project


def trainer_steps(project, repeats: int, info: dict) -> Iterator[None]:
    """``repeats`` fresh runs of one epoch, each as two steps: setup (up to :class:`Started`), then the epoch."""
    for _ in range(repeats):
        trainer = Trainer(project)
        for event in trainer.events():
            if isinstance(event, Failed):
                raise RuntimeError(event.message)
            if isinstance(event, Started):
                info["trainer samples"] = event.train
                yield
            if isinstance(event, EpochDone):
                _sync(trainer.device)
                yield


class HandLeNet(nn.Module):
    """LeNet-5 for RGB images, as a person would write it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, CLASSES)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class HandFolder(torch.utils.data.Dataset):
    """An ImageFolder as a tutorial writes it: (path, class) pairs, each image opened when asked for."""

    MEAN = torch.tensor([0.5, 0.5, 0.5]).view(3, 1, 1)
    STD = torch.tensor([0.25, 0.25, 0.25]).view(3, 1, 1)

    def __init__(self, folder: Path) -> None:
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        self.items = [(p, k) for k, c in enumerate(classes) for p in sorted((folder / c).iterdir())]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        from PIL import Image

        path, label = self.items[i]
        with Image.open(path) as im:
            x = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - self.MEAN) / self.STD, label


def hand_steps(folder: Path, device: str, workers: int, repeats: int, info: dict) -> Iterator[None]:
    """``repeats`` epochs, each as two steps: setup (listing the folder, the model), then the epoch."""
    dev = torch.device(device)
    for r in range(repeats):
        data = HandFolder(folder)
        info["hand samples"] = len(data)
        yield
        torch.manual_seed(r)
        model = HandLeNet().to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=0.002, fused=True)
        loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=workers,
                                             pin_memory=dev.type == "cuda")
        model.train()
        for x, y in loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(dev)
        yield


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child (the DataLoader workers), in MB."""
    scale = 1 if sys.platform == "darwin" else 1024  # NOTE: Linux reports kilobytes, macOS bytes
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 1e6
    return own, child


def compare(images: int, device: str, workers: int, repeats: int, root: Path | None = None) -> dict:
    """Lockstep epochs of the trainer's streaming path and the hand loop over one folder; the figures."""
    t0 = time.perf_counter()
    folder = make_folder(images, root)
    made = time.perf_counter() - t0
    info: dict = {}
    ours, theirs = lockstep(trainer_steps(folder_project(folder, device, workers), repeats, info),
                            hand_steps(folder, device, workers, repeats, info), reverse_every=2)
    ours, theirs = ours[1::2], theirs[1::2]  # NOTE: the even steps are setup, on both sides
    ratios = [t / o for o, t in zip(ours, theirs)]
    own, child = peak_memory_mb()
    return {"folder": folder, "made_s": made, "images": images, "epochs_ours": ours, "epochs_theirs": theirs,
            "ratio": statistics.median(ratios), "ratios": ratios, "peak_mb": own, "worker_peak_mb": child, **info}


def report(r: dict, workers: int, device: str) -> str:
    n = r["images"]
    lines = [
        f"folder: {r['folder']} ({n:,} images of {SIDE}×{SIDE} RGB; ready in {r['made_s']:.1f} s)",
        f"device: {device}, workers: {workers}, batch size {BATCH}, torch threads: {torch.get_num_threads()}",
        f"trainer (streaming): {n / min(r['epochs_ours']):8.0f} samples/s (best epoch of {len(r['epochs_ours'])})",
        f"hand DataLoader loop: {n / min(r['epochs_theirs']):8.0f} samples/s (best epoch of {len(r['epochs_theirs'])})",
        f"ratio trainer / hand loop, median of epochs side by side: {r['ratio']:.3f} (target >= 0.95; "
        f"each: {', '.join(f'{x:.3f}' for x in r['ratios'])})",
        f"peak resident memory: {r['peak_mb']:.0f} MB this process, {r['worker_peak_mb']:.0f} MB the largest worker",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES:,} images instead of {FULL_IMAGES:,}")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="default: the trainer's automatic count")
    parser.add_argument("--repeats", type=int, default=2, help="epochs of each side (default 2)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--cache", type=Path, default=None, help="where the image folder is kept")
    args = parser.parse_args(argv)
    images = args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES)
    workers = args.workers if args.workers is not None else worker_count(DataConfig())
    result = compare(images, args.device, workers, args.repeats, args.cache)
    print(report(result, workers, args.device))
    return result


if __name__ == "__main__":
    main()
