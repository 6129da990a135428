"""Data larger than memory: read from disk a batch at a time through a ``torch.utils.data.DataLoader``.

An image folder, CSV or ``.npz`` file whose samples (as float32) would take more than
``data.memory_budget_gib`` becomes a :class:`StreamDataset` instead of an in-memory
:class:`~engine.data.base.Dataset`: the same targets, classes and name, but its inputs stay in
their files (a :mod:`~engine.data.stream_sources` source) and ``rows`` says which samples it
holds. Splits and folds are index lists over the same sample order, so
:func:`~engine.data.splits.split_dataset` and :func:`~engine.data.splits.kfold` give exactly the
splits the in-memory path gives. The trainer reads batches with :func:`read_batches`: workers
decode, normalize and augment; a sample that cannot be read is left out of its batch and named
in ``StreamBatch.bad``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from engine.config import DataConfig
from engine.data.base import DataError, Dataset, labels_and_binary, shape_text
from engine.data.stream_sources import BadSample, Source

__all__ = [
    "STREAMABLE",
    "BatchKey",
    "StreamBatch",
    "StreamDataset",
    "StreamReader",
    "batch_keys",
    "first_samples",
    "is_streamed",
    "load_for_training",
    "read_batches",
    "stream_stats",
    "worker_count",
]

#: the data sets that can stream from disk: a person's own files
STREAMABLE = ("image_folder", "csv", "npz")
#: automatic workers: one per core but one, at most this many
MAX_AUTO_WORKERS = 8
#: batches each worker reads ahead
PREFETCH = 4


@dataclass
class StreamDataset:
    """Samples that stay in their files: ``source`` row ``rows[i]`` is sample ``i``; targets are in memory.

    Quacks like :class:`~engine.data.base.Dataset` for splitting and checking (``len``,
    ``targets``, ``classes``, ``name``, ``subset``), but has no ``x``: read its samples with
    :meth:`read` or :func:`read_batches`.
    """

    source: Source
    rows: np.ndarray
    targets: dict[str, Tensor]
    classes: list[str] | None
    name: str
    warnings: list[str] = field(default_factory=list)
    mask_classes: list[str] | None = None

    def __post_init__(self) -> None:
        for key, t in self.targets.items():
            if t.shape[0] != len(self.rows):
                raise DataError(f"{self.name}: target {key!r} has {t.shape[0]} rows but there are {len(self.rows)} samples")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.source.input_shape)

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> StreamDataset:
        """The samples at ``indices`` (positions in this set), with every target alongside."""
        idx = np.asarray(indices.cpu() if isinstance(indices, Tensor) else indices, dtype=np.int64).reshape(-1)
        picked = torch.from_numpy(idx)
        return replace(self, rows=self.rows[idx], targets={k: v[picked] for k, v in self.targets.items()},
                       warnings=list(self.warnings))

    def read(self, positions: Iterable[int]) -> tuple[Tensor, list[int], list[BadSample]]:
        """The raw samples at ``positions`` stacked, the positions read, and the samples that failed."""
        xs, kept, bad = [], [], []
        for p in positions:
            try:
                xs.append(self.source.read(int(self.rows[p])))
                kept.append(int(p))
            except BadSample as exc:
                bad.append(exc)
        x = torch.stack(xs) if xs else torch.empty((0, *self.input_shape))
        return x, kept, bad

    def load(self, positions: Sequence[int]) -> Dataset:
        """The samples at ``positions`` in memory, as a :class:`Dataset` (unreadable ones left out)."""
        x, kept, _ = self.read(positions)
        picked = torch.as_tensor(kept, dtype=torch.int64)
        return Dataset(x, {k: v[picked] for k, v in self.targets.items()}, self.classes, self.name,
                       list(self.warnings), self.mask_classes)


def is_streamed(ds: Any) -> bool:
    """True for a :class:`StreamDataset` (its inputs stay on disk)."""
    return isinstance(ds, StreamDataset)


def first_samples(ds: Dataset | StreamDataset, n: int) -> Tensor:
    """The raw inputs of the first ``n`` samples (fewer where a streamed one cannot be read)."""
    if is_streamed(ds):
        return ds.read(range(min(n, len(ds))))[0]
    return ds.x[:n]


# ------------------------------------------------------------------------ choosing the path
def _budget(cfg: DataConfig) -> float:
    return cfg.memory_budget_gib * 2**30


def _folder_stream(cfg: DataConfig, shape: tuple[int, ...], path: Path) -> StreamDataset | None:
    from engine.data.folder import list_image_folder
    from engine.data.stream_sources import FolderSource

    found = list_image_folder(path, shape, cfg.image_size)
    if len(found.files) * found.sample_bytes <= _budget(cfg):
        return None
    source = FolderSource([str(f) for f in found.files], found.mode, found.chw, shape)
    targets = labels_and_binary(found.labels, len(found.classes))
    return StreamDataset(source, np.arange(len(source)), targets, found.classes, path.name, list(found.warnings))


def _npz_stream(cfg: DataConfig, shape: tuple[int, ...], path: Path) -> StreamDataset | None:
    from engine.data.npzfile import npz_sample_bytes, open_npz_stream

    if npz_sample_bytes(path, shape) <= _budget(cfg):
        return None
    source, targets, classes = open_npz_stream(path, shape, cfg.task)
    return StreamDataset(source, np.arange(len(source)), targets, classes, path.name)


def _csv_stream(cfg: DataConfig, shape: tuple[int, ...], path: Path) -> StreamDataset | None:
    """NOTE: a table's float32 size is known only once it is read; its text, which is larger for
    numbers of more than 3 characters, stands in for it."""
    from engine.data.csvstream import open_csv_stream

    try:
        size = os.stat(path).st_size
    except (OSError, ValueError):
        return None  # NOTE: the in-memory loader names the problem in its own words
    if size <= _budget(cfg):
        return None
    return open_csv_stream(path, shape, cfg.task, cfg.feature_columns, cfg.target_column)


def load_for_training(cfg: DataConfig, input_shape: tuple[int, ...], base_dir: Path | None = None):
    """The data ``cfg`` names: a :class:`StreamDataset` for a file source larger than the memory
    budget, else the in-memory :class:`~engine.data.base.Dataset` of :func:`~engine.data.loading.load_dataset`."""
    from engine.data.loading import check_task, load_dataset
    from engine.data.sets import resolve_path

    shape = tuple(int(s) for s in input_shape)
    if cfg.dataset in STREAMABLE and len(shape) in (1, 3) and min(shape) >= 1:
        opener = {"image_folder": _folder_stream, "npz": _npz_stream, "csv": _csv_stream}[cfg.dataset]
        stream = opener(cfg, shape, resolve_path(cfg, base_dir))
        if stream is not None:
            check_task(stream, cfg.task)
            return stream
    return load_dataset(cfg, shape, base_dir)


# ------------------------------------------------------------------------ reading batches
class BatchKey(NamedTuple):
    """One batch to read: positions in the data set, and the seed of its augmentation (None: none)."""

    positions: tuple[int, ...]
    seed: int | None = None


@dataclass
class StreamBatch:
    """A batch as a worker made it: inputs (normalized and augmented), targets, the mixup pairing,
    the positions it holds, and the samples left out because they could not be read."""

    x: Tensor
    targets: dict[str, Tensor]
    mix: tuple[Tensor, float] | None
    positions: Tensor
    bad: list[BadSample]

    def pin_memory(self) -> StreamBatch:
        """Page-locked copies, so the copy to the GPU can overlap compute (the DataLoader calls this)."""
        return replace(self, x=self.x.pin_memory(), targets={k: v.pin_memory() for k, v in self.targets.items()})

    def to(self, device: torch.device) -> StreamBatch:
        mix = None if self.mix is None else (self.mix[0].to(device, non_blocking=True), self.mix[1])
        return replace(self, x=self.x.to(device, non_blocking=True), mix=mix,
                       targets={k: v.to(device, non_blocking=True) for k, v in self.targets.items()})


class StreamReader(torch.utils.data.Dataset):
    """What each DataLoader worker runs: a :class:`BatchKey` in, a :class:`StreamBatch` out.

    NOTE: one key is one batch, so a worker decodes, normalizes and augments the batch as one
    piece (the augmenter works on batches), and the batch's seed makes its augmentation the same
    whichever worker reads it, and after a resume.
    """

    def __init__(self, data: StreamDataset, normalizer=None, augmenter=None) -> None:
        self.data, self.normalizer, self.augmenter = data, normalizer, augmenter

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: BatchKey) -> StreamBatch:
        x, kept, bad = self.data.read(key.positions)
        picked = torch.as_tensor(kept, dtype=torch.int64)
        targets = {k: v[picked] for k, v in self.data.targets.items()}
        if self.normalizer is not None:
            x = self.normalizer.transform(x)
        mix = None
        if self.augmenter is not None and key.seed is not None and len(kept):
            x, targets, mix = self.augmenter(x, targets, torch.Generator().manual_seed(key.seed))
        return StreamBatch(x.contiguous(), targets, mix, picked, bad)


def _as_is(batch: StreamBatch) -> StreamBatch:
    return batch


def worker_count(cfg: DataConfig) -> int:
    """``data.workers``, or one per core but one (at most :data:`MAX_AUTO_WORKERS`) when it is automatic."""
    if cfg.workers is not None:
        return cfg.workers
    return max(1, min(MAX_AUTO_WORKERS, (os.cpu_count() or 2) - 1))


def batch_keys(positions: Tensor | Sequence[int], batch_size: int, seed: int | None = None) -> list[BatchKey]:
    """``positions`` cut into batches of ``batch_size``; with ``seed``, each batch's augmentation seed
    follows from it and the batch's first position, so it never depends on which worker reads it."""
    pos = [int(p) for p in (positions.tolist() if isinstance(positions, Tensor) else positions)]
    keys = []
    for start in range(0, len(pos), batch_size):
        chunk = tuple(pos[start : start + batch_size])
        keys.append(BatchKey(chunk, None if seed is None else (seed * 1_000_003 + start) % 2**63))
    return keys


def read_batches(reader: StreamReader, keys: list[BatchKey], workers: int, pin: bool = False) -> Iterator[StreamBatch]:
    """The batches ``keys`` name, in order, read by ``workers`` processes (0: in this one)."""
    if not keys:
        return iter(())
    if workers and multiprocessing.current_process().daemon:
        workers = 0  # NOTE: a daemonic process may not start processes of its own (the window's training child is not one)
    loader = torch.utils.data.DataLoader(
        reader, batch_size=None, sampler=keys, num_workers=workers, pin_memory=pin, collate_fn=_as_is,
        prefetch_factor=PREFETCH if workers else None,
    )
    return iter(loader)


@dataclass
class StreamStats:
    """What one pass over a streamed training split found: its normalization, value range and bad files."""

    normalizer: Any
    low: float
    high: float
    bad: list[BadSample]


def stream_stats(data: StreamDataset, workers: int, batch_size: int = 256) -> StreamStats:
    """Per-channel mean and std of ``data`` and its value range, in one pass read by ``workers`` processes.

    Raises:
        DataError: no sample of the split could be read.
    """
    from engine.data.normalize import Normalizer

    bad: list[BadSample] = []
    span = [math.inf, -math.inf]

    def raw_batches() -> Iterator[Tensor]:
        for batch in read_batches(StreamReader(data), batch_keys(range(len(data)), batch_size), workers):
            bad.extend(batch.bad)
            if len(batch.x):
                span[0], span[1] = min(span[0], float(batch.x.min())), max(span[1], float(batch.x.max()))
                yield batch.x

    try:
        normalizer = Normalizer.fit_batches(raw_batches(), data.name)
    except DataError:
        where = f" (such as {bad[0].where}: {bad[0].reason})" if bad else ""
        raise DataError(f"{data.name}: none of the {len(data):,} training samples of {shape_text(data.input_shape)} "
                        f"could be read{where}") from None
    return StreamStats(normalizer, span[0], span[1], bad)
