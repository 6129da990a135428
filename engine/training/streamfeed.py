"""The trainer's data fetch for data streamed from disk (see :mod:`engine.data.streaming`).

:class:`StreamFeed` reads an epoch's batches in the order of the trainer's ``_EpochPart`` (one
DataLoader per epoch, or per resume, whose workers decode, normalize and augment), takes the
optimizer step on each, and evaluates a split a batch at a time. A sample that cannot be read is
reported once per run as a :class:`~engine.training.events.FileSkipped` and left out, or, when
``data.on_bad_file`` is ``"stop"``, ends the run with a one-line message naming the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import torch

from engine.data.streaming import StreamBatch, StreamDataset, StreamReader, batch_keys, read_batches
from engine.training.events import FileSkipped

if TYPE_CHECKING:  # pragma: no cover
    from engine.data.base import Dataset
    from engine.data.stream_sources import BadSample
    from engine.training.trainer import Trainer

__all__ = ["INSIGHT_SAMPLES", "StreamFeed", "insight_samples"]

#: validation samples (the first ones) the epoch's insight views look at when the data stream
INSIGHT_SAMPLES = 512


class StreamFeed:
    """Batches of the trainer's streamed splits, read ahead by ``workers`` processes."""

    def __init__(self, trainer: Trainer, workers: int, on_bad_file: str) -> None:
        self.trainer, self.workers, self.on_bad_file = trainer, workers, on_bad_file
        self.pin = trainer.device.type == "cuda"
        self.empty = 0  # batches of this epoch none of whose samples could be read
        self._batches: Iterator[StreamBatch] | None = None
        self._pending: list[FileSkipped] = []
        self._seen: set[str] = set()
        self._insight: Dataset | None = None

    def met(self, bad: list[BadSample], epoch: int) -> None:
        """Note unreadable samples for :meth:`reports`; stop the run at the first when so chosen."""
        from engine.training.trainer import TrainingError

        for sample in bad:
            if self.on_bad_file == "stop":
                raise TrainingError(
                    f"{sample.where}: {sample.reason}; training stopped, as data.on_bad_file is \"stop\" "
                    "(\"skip\" trains on without such files)"
                )
            if sample.where not in self._seen:
                self._seen.add(sample.where)
                self._pending.append(FileSkipped(path=sample.where, reason=sample.reason, epoch=epoch))

    def reports(self) -> Iterator[FileSkipped]:
        """The unreadable samples met since the last call, each once; the run folder lists them all."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        writer = self.trainer.writer
        if writer is not None:
            writer.update(skipped_files=sorted(self._seen))
        yield from pending

    def start(self, part, epoch: int) -> None:
        """Read the rest of the epoch ``part`` stands in, from its position on, with the current settings."""
        trainer = self.trainer
        if part.pos == 0:
            self.empty = 0
        self.close()  # NOTE: the previous loader's workers go before new ones start
        seed = None if trainer.augment is None else trainer.cfg.seed * 100_003 + epoch
        keys = batch_keys(part.order[part.pos : part.end], part.batch_size, seed)
        reader = StreamReader(trainer.splits["train"], trainer.normalizer, trainer.augment)
        self._batches = read_batches(reader, keys, self.workers, self.pin)

    def close(self) -> None:
        """Let the epoch's reader go: its worker processes end (they would wait for the next batch)."""
        self._batches = None

    def check_trained(self, batches: int, epoch: int) -> None:
        """Refuse an epoch of ``batches`` batches none of whose samples could be read."""
        from engine.training.trainer import TrainingError

        if batches and self.empty == batches:
            raise TrainingError(
                f"no sample of the training split could be read in epoch {epoch}: every file failed "
                "(see the files skipped): check that the data folder or file is still there and readable"
            )

    def step(self, epoch: int) -> torch.Tensor | None:
        """The optimizer step on the epoch's next batch: its loss, or None when no sample of it could be read."""
        batch = next(self._batches)
        self.met(batch.bad, epoch)
        if not len(batch.x):
            self.empty += 1
            return None
        b = batch.to(self.trainer.device)
        return self.trainer._step(b.x, b.targets, None, mix=b.mix, augmented=True)

    def batches_of(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """The samples of ``split`` in order, normalized, on the device, as (inputs, targets) batches."""
        trainer = self.trainer
        data = trainer.splits[split]
        epoch = len(trainer.history) + 1
        reader = StreamReader(data, trainer.normalizer)
        for batch in read_batches(reader, batch_keys(range(len(data)), batch_size), self.workers, self.pin):
            self.met(batch.bad, epoch)
            if len(batch.x):
                b = batch.to(trainer.device)
                yield b.x, b.targets

    def insight_set(self) -> Dataset:
        """The samples the epoch's insight views look at (:func:`insight_samples`), loaded once."""
        if self._insight is None:
            splits = self.trainer.splits
            self._insight = insight_samples(splits["val"] if len(splits["val"]) else splits["train"],
                                            self.trainer.normalizer)
        return self._insight


def insight_samples(split: StreamDataset, normalizer=None) -> Dataset:
    """The first :data:`INSIGHT_SAMPLES` samples of a streamed split (the validation split, or training
    without one), normalized, in memory: what the insight views of a streamed run look at, during the
    run and when a stored run's views are computed again."""
    ds = split.load(range(min(INSIGHT_SAMPLES, len(split))))
    return normalizer.apply(ds) if normalizer is not None else ds
