"""The training loop: a plain generator of events, with no Qt and no threads of its own.

:class:`Trainer` takes a *snapshot* of a project (plain data), compiles its own
model, loads and splits the data, and trains, yielding the events of
:mod:`engine.training.events`: :class:`Started`, :class:`BatchesDone` (losses since the
last such event, throttled to a few dozen per second whatever the batch rate),
:class:`EpochDone`, :class:`CheckpointSaved`, :class:`EarlyStopped`, :class:`Finished` and
:class:`Failed`. Stop, pause and resume are flags in a :class:`Control` that the loop checks
between batches, so a worker thread (or the CLI) drives the same loop; a pause that takes
effect is acknowledged with :class:`Paused`, its end with :class:`Resumed`. A resume may carry
changed settings, which the loop applies where it paused (see :mod:`engine.training.pausing`), and
``init_from`` starts a new run from earlier weights, block by block where they fit: a changed network
from a paused run's, or (transfer learning) another run's or checkpoint's (:mod:`engine.training.transfer`).

A NaN or infinite loss, running out of GPU memory, and any other exception end
the run with a :class:`Failed` event whose message says what happened and what to try;
the generator itself never raises for a training problem. :func:`cross_validate_events`
runs k-fold cross-validation as the same kind of generator.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from engine.compile import compile_graph
from engine.config import TrainingConfig
from engine.errors import NetDesignerError
from engine.project import Project, project_to_dict
from engine.training.checkpoint import make_checkpoint, restore
from engine.training.events import (
    STOPPED_BEFORE_TRAINING,
    BatchesDone,
    CheckpointSaved,
    EarlyStopped,
    EpochDone,
    Failed,
    Finished,
    InsightDone,
    Paused,
    ProbesDone,
    Resumed,
    Started,
    TrainingEvent,
    WeightsKept,
)
from engine.tasks import LOSS, head_spec
from engine.training.objectives import MetricSum, main_metric, mixed_loss
from engine.training.transfer import run_folder_of as _run_folder_of


class TrainingError(NetDesignerError):
    """Training cannot start or cannot go on; the message says why and what to do."""


class Control:
    """Thread-safe stop / pause / resume flags, checked by the loop between batches.

    A resume may carry changes (setting -> new value, see :mod:`engine.training.live`) that the loop
    applies before it goes on; while paused, :meth:`keep_weights` asks the loop to write its weights.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._stop = False
        self._paused = False
        self._changes: dict[str, Any] = {}
        self._keep: list[Path] = []

    def stop(self) -> None:
        with self._cond:
            self._stop = True  # NOTE: a paused loop wakes up to see the stop
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self, changes: dict[str, Any] | None = None) -> None:
        """Go on; with ``changes``, the loop applies them first (or refuses them and stays paused)."""
        with self._cond:
            self._changes.update(changes or {})
            self._paused = False
            self._cond.notify_all()

    def keep_weights(self, path: str | Path) -> None:
        """Ask the paused loop to write the model's weights to ``path`` (acknowledged with ``WeightsKept``)."""
        with self._cond:
            self._keep.append(Path(path))
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stop

    @property
    def paused(self) -> bool:
        return self._paused

    def take_changes(self) -> dict[str, Any]:
        """The changes sent with the resume (emptied)."""
        with self._cond:
            changes, self._changes = self._changes, {}
            return changes

    def wait_while_paused(self) -> Path | None:
        """Block while paused; a path when the weights are wanted meanwhile, None once resumed or stopped."""
        with self._cond:
            while self._paused and not self._stop and not self._keep:
                self._cond.wait(0.1)  # NOTE: a timeout, so a signal handler (Ctrl+C) runs in the CLI's loop
            return self._keep.pop(0) if self._keep and not self._stop else None


def pick_device(choice: str) -> torch.device:
    """``auto`` -> the first GPU when there is one, else the CPU; ``cuda:N`` a GPU by its number.

    A device this machine does not have is an error that names the GPUs it has (:mod:`engine.devices`).
    """
    from engine.devices import DeviceError, resolve_device

    try:
        return resolve_device(choice)
    except DeviceError as exc:
        raise TrainingError(str(exc)) from None


def make_optimizer(params, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names, over ``params``, in the fastest form PyTorch has for their device.

    Unless asked, PyTorch steps the parameters one tensor at a time on the CPU. Its fused
    kernel does the same arithmetic for all of them at once: Adam's step for LeNet-5 on 2 CPU
    cores took 0.6 ms instead of 1.8 ms, about 8 % of a whole training step, and the weights
    agree to float rounding. RMSprop has no fused kernel; its multi-tensor form is next best.
    """
    params = list(params)
    wd = cfg.weight_decay
    if cfg.optimizer == "sgd":
        cls, kw = torch.optim.SGD, {"momentum": cfg.momentum, "nesterov": cfg.nesterov and cfg.momentum > 0}
    elif cfg.optimizer == "rmsprop":
        cls, kw = torch.optim.RMSprop, {}
    elif cfg.optimizer == "adagrad":
        cls, kw = torch.optim.Adagrad, {}
    else:
        cls, kw = torch.optim.Adam, {}
    kw.update(lr=cfg.lr, weight_decay=wd)
    for fast in ({"fused": True}, {"foreach": True}):
        try:
            return cls(params, **kw, **fast)
        except (RuntimeError, TypeError, ValueError):
            pass  # NOTE: not for this optimizer, device or dtype; the plain form below says what is wrong, if anything
    return cls(params, **kw)


def trained_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the optimizer steps: all but the frozen blocks'.

    NOTE: the compiled module freezes those itself (``requires_grad_(False)`` in its ``__init__``, and a
    frozen BatchNorm kept in evaluation mode by its ``train``: :mod:`engine.codegen`), so the
    exported module trains the same way; leaving them out here also keeps weight decay and momentum
    off them.

    Raises:
        TrainingError: there is nothing to train (every block with weights frozen, or none has any).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params and any(True for _ in model.parameters()):
        raise TrainingError(
            "nothing to train: every block with weights is frozen (its Trainable setting is off); "
            "turn Trainable on for at least one block"
        )
    if not params:
        raise TrainingError("nothing to train: the network has no block with weights (add a Dense or Conv2d layer)")
    return params


def make_scheduler(optimizer, cfg: TrainingConfig, epochs):
    """The learning-rate schedule ``cfg`` names (None for a constant rate).

    ``epochs`` is the run's length, or a function that returns it: the cosine schedule reads it at
    every step, so a run continued for more epochs goes on along a cosine over the new length.
    """
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        length = epochs if callable(epochs) else (lambda: epochs)
        # NOTE: the closed form of CosineAnnealingLR (eta_min 0); its recursive form cannot follow a
        # change of length, and after the end it climbs back up.
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, max(1, length())) / max(1, length())))
        )
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.gamma, patience=max(1, cfg.step_size // 3))
    return None


class Trainer:
    """One training run of a project snapshot. Iterate :meth:`events` to run it."""

    def __init__(
        self,
        project: Project,
        *,
        base_dir: Path | None = None,
        out_dir: Path | None = None,
        epochs: int | None = None,
        device: str | None = None,
        control: Control | None = None,
        resume_from: Path | None = None,
        emit_interval: float = 1 / 30,
        splits=None,
        probes: bool = False,
        label: str = "",
        init_from: Path | None = None,
    ) -> None:
        # NOTE: a deep copy through plain data: the caller's project is never shared with the loop.
        from engine.project import project_from_dict

        self.project = project_from_dict(project_to_dict(project), source=project.name or "<snapshot>")
        self.cfg = self.project.training
        self.epochs = epochs or self.cfg.epochs
        self.device_choice = device or self.cfg.device
        self.base_dir = base_dir
        self.out_dir = Path(out_dir) if out_dir else None
        self.control = control or Control()
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self.label = label
        # NOTE: the weights a new run starts from (engine.training.transfer): a paused run's, a run folder,
        # a checkpoint or a weights file; not a continuation (that is resume_from)
        self.init_from = Path(init_from) if init_from is not None else None
        self.transfer: dict[str, Any] | None = None  # what the new network kept of them
        self.schedule_from = 0  # the epochs before the schedule began (a schedule set while paused starts later)
        self.writer = None  # the run folder's RunWriter, once the run has begun (with out_dir)
        self.emit_interval = emit_interval
        self._given_splits = splits
        self.with_probes = probes and self.project.probes.enabled
        self.probe_runner = None
        self.last_outputs: list[torch.Tensor] | None = None
        self.model: torch.nn.Module | None = None
        self.history: list[dict[str, Any]] = []
        self.stream = None  # a StreamFeed (engine.training.streamfeed) when the data stream from disk

    # ------------------------------------------------------------------ setup
    def _prepare(self) -> None:
        from engine.data import Normalizer, split_dataset
        from engine.data.streaming import first_samples, is_streamed, load_for_training

        graph = self.project.graph
        torch.manual_seed(self.cfg.seed)
        self.device = pick_device(self.device_choice)
        compiled = compile_graph(graph, self.project.name or "Net", title=self.project.name)
        self.code = compiled.code
        if len(self.code.input_ids) != 1:
            raise TrainingError("training needs exactly one Input block")
        self.heads = [(nid, graph.nodes[nid].type, graph.nodes[nid].params["weight"]) for nid in self.code.output_ids if graph.nodes[nid].spec.role == "head"]
        if len(self.heads) != len(self.code.output_ids):
            raise TrainingError(
                "add an output block (Class output, Regression output, ...) after the last layer so "
                "training knows what to learn"
            )
        from engine.datacheck import require_data_fit

        require_data_fit(self.project, self.base_dir)  # NOTE: never a raw PyTorch error for a mismatch
        if self._given_splits is not None:
            train, val, test = self._given_splits
        else:
            data = load_for_training(self.project.data, self.code.input_shapes[0], base_dir=self.base_dir)
            train, val, test = split_dataset(data, self.project.data.val_fraction, self.project.data.test_fraction, self.project.data.seed)
        for nid, kind, _ in self.heads:
            key, words = head_spec(kind).target, head_spec(kind).target_words
            if key not in train.targets:
                name = graph.nodes[nid].name
                raise TrainingError(
                    f"'{name}' needs {words}, but the '{self.project.data.dataset}' data set has "
                    f"{', '.join(sorted(train.targets)) or 'no targets'}: pick another data set or output block"
                )
        raw_probe = first_samples(val if len(val) else train, self.project.probes.probe_samples)
        self._check_stop("the data loaded")
        self.stream = None  # NOTE: data larger than memory: read by DataLoader workers (engine.data.streaming)
        if is_streamed(train):
            self._prepare_stream(train)
        else:
            self.data_info = _data_info(train)
            self.normalizer = Normalizer.fit(train) if self.project.data.normalize else None
        if self.normalizer is not None and self.stream is None:
            train, val, test = (self.normalizer.apply(s) for s in (train, val, test))
        self.splits = {"train": train, "val": val, "test": test}
        self.model = compiled.module.to(self.device)
        if self.init_from is not None:
            from engine.training.pausing import start_from_weights

            if self.resume_from is not None:
                raise TrainingError("a run either continues from a checkpoint or starts from earlier weights, "
                                    "not both")

            self.transfer = start_from_weights(self)
        self.optimizer = make_optimizer(trained_parameters(self.model), self.cfg)
        self.scheduler = make_scheduler(self.optimizer, self.cfg, lambda: self.epochs - self.schedule_from)
        self.amp = self.cfg.mixed_precision and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self._tensors = None if self.stream else {name: self._to_device(split) for name, split in self.splits.items()}
        self.augment = None
        if self.project.data.augment:
            from engine.data import Augmenter

            self.augment = Augmenter(self.project.data.augment)
        if self.with_probes:
            self._make_probe_runner(raw_probe, self._probe_inputs(raw_probe))
        # NOTE: the generators live as long as the run, and a checkpoint keeps their states, so a run
        # resumed from a checkpoint shuffles and augments exactly as the uninterrupted run did.
        self.aug_gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        self.shuffle_gen = torch.Generator().manual_seed(self.cfg.seed)
        self.start_epoch = 1
        self.best = (math.inf, 0)
        if self.resume_from is not None:
            restore(self, self.resume_from)
            if self.start_epoch > self.epochs:
                raise TrainingError(
                    f"{self.resume_from.name} is the checkpoint of epoch {self.start_epoch - 1}: to train more, "
                    f"ask for more than {self.start_epoch - 1} epochs (now {self.epochs})"
                )

    def _check_stop(self, stage: str) -> None:
        if self.control.stopped:
            raise _StoppedEarly(stage)

    def _prepare_stream(self, train) -> None:
        """Set up reading the splits from disk: with normalization, one pass over ``train`` fits it."""
        from engine.data.streaming import stream_stats, worker_count
        from engine.training.streamfeed import StreamFeed

        data = self.project.data
        workers = worker_count(data)
        self.stream = StreamFeed(self, workers, data.on_bad_file)
        self.data_info = {"input_shape": list(train.input_shape), "dtype": "float32", "classes": train.classes}
        self.normalizer = None
        if data.normalize:  # NOTE: without it, no pass before training: the value range stays unknown
            stats = stream_stats(train, workers)
            self.normalizer = stats.normalizer
            self.data_info.update(input_min=stats.low, input_max=stats.high)
            self.stream.met(stats.bad, epoch=0)

    def _probe_inputs(self, raw_probe: torch.Tensor) -> torch.Tensor:
        """The probe samples as the model sees them: normalized, on the device."""
        if self.stream is None:
            return self._tensors["val" if len(self.splits["val"]) else "train"][0][: len(raw_probe)]
        x = self.normalizer.transform(raw_probe) if self.normalizer is not None else raw_probe
        return x.to(self.device)

    def _to_device(self, split):
        x = split.x.to(self.device, non_blocking=True)
        targets = {k: v.to(self.device, non_blocking=True) for k, v in split.targets.items()}
        return x, targets

    # ------------------------------------------------------------------ loop
    def events(self) -> Iterator[TrainingEvent]:
        """Run the whole training, yielding events. Never raises for a training problem."""
        try:
            yield from self._run()
        except _StoppedEarly as stop:
            done = Finished(stopped=True, epochs_run=0, message=f"{STOPPED_BEFORE_TRAINING} ({stop})")
            if self.writer is not None:
                self.writer.finish("stopped", done.summary())
            yield done
        except Exception as exc:  # noqa: BLE001 - any failure reaches the window as a message
            message = failure_message(exc, self.cfg.batch_size, self)
            if self.writer is not None:
                self.writer.finish("failed", None, message)
            yield Failed(message=message)
        finally:
            if self.stream is not None:
                self.stream.close()
            if self.writer is not None:
                self.writer.close()  # NOTE: a run abandoned half way (its reader gone) reads as interrupted
            elif self.out_dir is not None:
                _remove_if_empty(self.out_dir)  # NOTE: it never began: no folder for a run that has nothing

    def _open_run_folder(self) -> None:
        """Start (or go on with) the run folder ``out_dir``, when there is one."""
        if self.out_dir is None:
            return
        from engine.training.runs import RunWriter, is_run_dir

        resume_epoch = fork_of = None
        if self.resume_from is not None:
            resume_epoch = self.start_epoch - 1
            home = _run_folder_of(self.resume_from)
            if home is None or home.resolve() != self.out_dir.resolve():
                fork_of = home if home is not None and is_run_dir(home) else None
                if fork_of is None:
                    resume_epoch = None  # NOTE: a checkpoint from elsewhere: a new run with no history before it
        fork_point = extra = None
        if self.init_from is not None and self.resume_from is None:
            source = Path(self.transfer.get("checkpoint") or self.init_from) if self.transfer else self.init_from
            home = _run_folder_of(source)  # NOTE: a new run from earlier weights: its lineage
            fork_of = home if home is not None and is_run_dir(home) else None
            fork_point = dict(self.transfer or {})
            if fork_of is None:  # NOTE: a checkpoint or weights file from no run: summary.json still names it
                extra = {"init_from": fork_point}
        self.writer = RunWriter(
            self.out_dir, snapshot=project_to_dict(self.project), label=self.label, epochs=self.epochs,
            resume_epoch=resume_epoch, fork_of=fork_of, fork_point=fork_point, extra=extra,
        )
        if resume_epoch is not None:
            self.history = [dict(r) for r in self.writer.rows]

    def _batches_per_epoch(self, n: int) -> tuple[int, int, int]:
        """(batch size, batches, samples used) of an epoch over ``n`` training samples.

        A final batch of one sample is left out when the network has BatchNorm: it cannot normalize a
        batch of one ("Expected more than 1 value per channel"); the samples are shuffled each epoch,
        so a different one sits out each time.
        """
        bs = min(self.cfg.batch_size, n)
        used = n
        if n % bs == 1 and _has_batchnorm(self.model):
            if n == 1:
                raise TrainingError("BatchNorm needs at least 2 samples in a batch, and the training split has 1: "
                                    "use more data or remove the BatchNorm block")
            used = n - 1
        return bs, math.ceil(used / bs), used

    def _run(self) -> Iterator[TrainingEvent]:
        self._prepare()
        x_train, t_train = self._tensors["train"] if self.stream is None else (None, None)
        n = len(self.splits["train"])
        if n == 0:
            raise TrainingError("the training split is empty: use more data or smaller validation/test fractions")
        bs, batches, used = self._batches_per_epoch(n)
        self._open_run_folder()
        device = _device_name(self.device)
        if self.writer is not None:
            self.writer.update(device=device, batches_per_epoch=batches, data=self.data_info)
        classes = self.splits["train"].classes
        yield Started(
            device=device, epochs=self.epochs, start_epoch=self.start_epoch,
            history=tuple(dict(r) for r in self.history), batches_per_epoch=batches, train=n,
            skipped_last=n - used, val=len(self.splits["val"]), test=len(self.splits["test"]),
            params=sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            classes=tuple(classes) if classes is not None else None, main_metric=main_metric(self.project.graph),
            run_dir=str(self.out_dir) if self.out_dir is not None else None, transfer=self.transfer,
        )
        stream = self.stream
        if stream is not None:
            yield from stream.reports()
        gen, cpu_gen = self.aug_gen, self.shuffle_gen
        step = (self.start_epoch - 1) * batches
        if self.history and isinstance(self.history[-1].get("step"), int):
            step = self.history[-1]["step"]
        pace = _Pace(first_step=step, total_steps=self.epochs * batches + step - (self.start_epoch - 1) * batches,
                     batch_size=bs)
        pending: list[torch.Tensor] = []
        last_emit = time.perf_counter()
        stopped = False
        early = False
        for epoch in range(self.start_epoch, self.epochs + 1):
            self.model.train()
            t_epoch = time.perf_counter()
            order = torch.randperm(n, generator=cpu_gen)
            order = order.to(self.device) if stream is None else order
            epoch_loss = 0.0  # summed from the batches' losses as they are sent out
            part = _EpochPart(order, bs, used)
            if stream is not None:
                stream.start(part, epoch)
            while not part.done:
                if self.control.paused:
                    if pending:  # NOTE: the curves show every batch trained before the pause
                        done = self._batches_done(pending, epoch, part.batch, step, pace)
                        epoch_loss += float(done.losses.sum())
                        yield done
                    if (yield from self._pause(step, epoch, part, pace, n)) is not None:
                        bs, batches, used = self._batches_per_epoch(n)  # NOTE: the batch size may have changed
                        if stream is not None:
                            stream.start(part, epoch)  # NOTE: the rest of the epoch with the new settings
                if self.control.stopped:
                    stopped = True
                    break
                idx = part.next_batch()
                probing = self.probe_runner is not None and self.probe_runner.due(step + 1)
                if probing:
                    self.probe_runner.mark(self.model)
                if stream is None:
                    loss = self._step(x_train[idx], {k: v[idx] for k, v in t_train.items()}, gen)
                else:
                    loss = stream.step(epoch)
                    yield from stream.reports()
                if loss is not None:
                    pending.append(loss)
                step += 1
                if probing:
                    yield ProbesDone(step=step, results=self.probe_runner.run(self.model, step))
                now = time.perf_counter()
                if pending and (now - last_emit >= self.emit_interval or part.done):  # NOTE: none after unreadable batches
                    last_emit = now
                    done = self._batches_done(pending, epoch, part.batch, step, pace, now)
                    epoch_loss += float(done.losses.sum())
                    yield done
            if stream is not None:
                stream.close()
            if stopped:
                if pending and self.writer is not None:
                    self.writer.batches(torch.stack(pending).float().cpu().numpy())
                break
            if stream is not None:
                stream.check_trained(part.batch, epoch)
            train_loss = epoch_loss / (part.batch - (stream.empty if stream is not None else 0))
            val_loss, val_metrics = self.evaluate("val", keep_outputs=self.probe_runner is not None and stream is None)
            if stream is not None:
                yield from stream.reports()
            done = EpochDone(epoch=epoch, step=step, train_loss=train_loss, lr=self.optimizer.param_groups[0]["lr"],
                             val_loss=val_loss, scores={f"val_{k}": v for k, v in val_metrics.items()},
                             seconds=time.perf_counter() - t_epoch)
            record = done.row()
            self.history.append(record)
            self._schedule(val_loss if val_loss is not None else train_loss)
            if self.writer is not None:
                self.writer.epoch(record, step)  # NOTE: before the checkpoints: see engine.training.runs
            yield done
            if self.probe_runner is not None:
                if stream is not None:
                    views = self.probe_runner.evaluate(self.model, stream.insight_set())
                elif len(self.splits["val"]):
                    views = self.probe_runner.evaluate(self.model, self.splits["val"], scores=self.last_outputs)
                else:
                    views = self.probe_runner.evaluate(self.model, self.splits["train"])
                yield InsightDone(epoch=epoch, views=views)
            monitored = val_loss if val_loss is not None else train_loss
            improved = LOSS.better(monitored, self.best[0])
            if improved:
                self.best = (monitored, epoch)
                # NOTE: a tensor copy per entry; copy.deepcopy of the same dict took 7x as long (~1 ms for
                # LeNet-5 on 2 cores, 0.3 % of an epoch).
                self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            if self.writer is not None:
                yield from self._save_checkpoints(epoch, improved)
            patience = self.cfg.early_stopping_patience  # NOTE: read each epoch: a resume may change it
            if patience and epoch - self.best[1] >= patience:
                early = True
                yield EarlyStopped(epoch=epoch, best_epoch=self.best[1])
                break
        early_stopping = self.cfg.early_stopping_patience  # NOTE: as the run ends (a resume may have changed it)
        if self.cfg.restore_best and getattr(self, "_best_state", None) is not None and (early_stopping or stopped):
            self.model.load_state_dict(self._best_state)
        trained = bool(self.history)
        test_loss, test_metrics = self.evaluate("test") if trained else (None, {})
        if stream is not None:
            yield from stream.reports()
        done = Finished(
            stopped=stopped, epochs_run=len(self.history), best_epoch=self.best[1], test_loss=test_loss,
            test=test_metrics, seconds=time.perf_counter() - pace.t_start, device=device,
            message="" if trained else "stopped before the first epoch finished: there is nothing to test",
            history=tuple(dict(r) for r in self.history),
        )
        if self.writer is not None:
            self.writer.finish("stopped" if stopped else "early stop" if early else "finished", done.summary())
        yield done

    def _batches_done(self, pending: list[torch.Tensor], epoch: int, batch: int, step: int, pace: _Pace,
                      now: float | None = None) -> BatchesDone:
        """The losses in ``pending`` (emptied) as one event, written to the run folder; a NaN ends the run."""
        losses = torch.stack(pending).float().cpu().numpy()
        pending.clear()
        if self.writer is not None:
            self.writer.batches(losses)
        if not all(map(math.isfinite, losses.tolist())):
            raise TrainingError(
                f"the loss became {'NaN' if any(map(math.isnan, losses.tolist())) else 'infinite'} "
                f"at epoch {epoch}, batch {batch}: training diverged. Lower the learning rate "
                f"(now {self.optimizer.param_groups[0]['lr']:g}) or add BatchNorm"
            )
        now = time.perf_counter() if now is None else now
        elapsed = now - pace.t_start
        rate = (step - pace.first_step) * pace.batch_size / max(now - pace.t_rate, 1e-9)
        return BatchesDone(epoch=epoch, batch=batch, step=step, total_steps=pace.total_steps, losses=losses,
                           samples_per_s=rate, elapsed=elapsed,
                           eta=(pace.total_steps - step) * pace.batch_size / max(rate, 1e-9))

    def _pause(self, step: int, epoch: int, part: _EpochPart, pace: _Pace, n: int) -> Iterator[TrainingEvent]:
        """Wait while paused, acknowledging the pause and (unless Stop ended it) the resume.

        Meanwhile the weights are written when asked (:class:`WeightsKept`). The resume's changes are
        applied here, all or none (see :mod:`engine.training.pausing`); changes that cannot be are
        answered with another :class:`Paused` that says why, and the loop waits on. Returns the
        applied changes (a :class:`~engine.training.live.LivePlan`), or None.
        """
        from engine.training.live import LiveChangeError
        from engine.training.pausing import apply_changes, keep_paused_weights

        where = {"step": step, "epoch": epoch, "batch": part.batch, "at": epoch - 1 + part.fraction}
        yield Paused(**where)
        while True:
            keep = self.control.wait_while_paused()
            if self.control.stopped:
                return None
            if keep is not None:
                try:
                    keep_paused_weights(self, keep, step=step, epoch=epoch - 1, at=where["at"])
                except OSError as exc:
                    yield Paused(**where, refused=f"the weights could not be written to {keep}: {exc.strerror or exc}")
                    continue
                yield WeightsKept(path=str(keep), step=step, at=where["at"])
                continue
            try:
                live = apply_changes(self, self.control.take_changes(), epoch)
            except LiveChangeError as exc:
                self.control.pause()
                yield Paused(**where, refused=str(exc))
                continue
            break
        pace.first_step, pace.t_rate = step, time.perf_counter()
        if not live.applied:
            yield Resumed(**where)
            return None
        sizes = {}
        if live.changed("training.batch_size"):
            bs, batches, _ = self._batches_per_epoch(n)
            part.resize(bs, n, _has_batchnorm(self.model))
            pace.batch_size = bs
            pace.total_steps = step + part.batches - part.batch + (self.epochs - epoch) * batches
            sizes = {"batches_per_epoch": batches, "epoch_batches": part.batches, "total_steps": pace.total_steps}
            if self.writer is not None:
                self.writer.update(batches_per_epoch=batches)
        if self.writer is not None:
            self.writer.change(step, where["at"], live.applied, project_to_dict(self.project))
        yield Resumed(**where, changes=dict(live.applied), **sizes)
        return live

    def _make_probe_runner(self, raw_probe: torch.Tensor, x_probe: torch.Tensor) -> None:
        """Probes on a few fixed validation samples (see :mod:`engine.probes`); never fatal."""
        from engine.probes.runner import ProbeRunner

        # NOTE: the raw images (before normalization) are what a person recognises.
        display = raw_probe if raw_probe.dim() == 4 else None
        self.probe_runner = ProbeRunner(
            self.project.graph, self.code, x_probe, config=self.project.probes, display_x=display
        )

    def _step(self, x, targets, gen, mix=None, augmented: bool = False) -> torch.Tensor:
        """One optimizer step on a batch; ``augmented``: a streamed batch, augmented by its worker (``mix``)."""
        if self.augment is not None and not augmented:
            x, targets, mix = self.augment(x, targets, gen)
        with self._autocast():
            outs = self.model(x)
            loss = self._loss(outs, targets, mix)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def _autocast(self):
        """Mixed precision on CUDA when asked for; otherwise nothing (no per-step cost)."""
        return torch.autocast(self.device.type) if self.amp else contextlib.nullcontext()

    def _loss(self, outs, targets, mix=None) -> torch.Tensor:
        if not isinstance(outs, tuple):
            outs = (outs,)
        total = None
        for (nid, kind, weight), out in zip(self.heads, outs):
            choice = self.project.graph.nodes[nid].params.get("loss")  # NOTE: the block's loss setting, if it has one
            term = mixed_loss(kind, out.float(), targets[head_spec(kind).target], mix, choice)
            if weight != 1.0:
                term = weight * term
            total = term if total is None else total + term
        return total

    @torch.no_grad()
    def evaluate(
        self, split: str, batch_size: int = 512, keep_outputs: bool = False
    ) -> tuple[float | None, dict[str, float]]:
        """Mean loss and metrics of the current model on a split (None, {} when it is empty).

        With ``keep_outputs`` the model's outputs (one tensor per head) are kept in
        ``last_outputs``, so the epoch's insight views need no second pass over the split.
        """
        if self.stream is None:
            x, targets = self._tensors[split]
            if x.shape[0] == 0:
                return None, {}
            batches = ((x[i : i + batch_size], {k: v[i : i + batch_size] for k, v in targets.items()})
                       for i in range(0, x.shape[0], batch_size))
        else:
            batches = self.stream.batches_of(split, batch_size)
        was_training = self.model.training
        self.model.eval()
        sums = [MetricSum(kind) for _, kind, _ in self.heads]
        kept: list[list[torch.Tensor]] = [[] for _ in self.heads]
        loss_total = 0.0
        n = 0
        for xb, tb in batches:
            with self._autocast():
                outs = self.model(xb)
            outs = outs if isinstance(outs, tuple) else (outs,)
            loss_total += float(self._loss(outs, tb)) * xb.shape[0]
            n += xb.shape[0]
            for s, (nid, kind, _), out, bucket in zip(sums, self.heads, outs, kept):
                s.update(out.float(), tb[head_spec(kind).target])
                if keep_outputs:
                    bucket.append(out.detach().float())
        self.model.train(was_training)
        self.last_outputs = [torch.cat(b) for b in kept] if keep_outputs and n else None
        if n == 0:  # NOTE: a streamed split none of whose samples could be read
            return None, {}
        metrics: dict[str, float] = {}
        for s, (nid, kind, _) in zip(sums, self.heads):
            prefix = "" if len(self.heads) == 1 else f"{self.project.graph.nodes[nid].name}_"
            metrics.update({prefix + k: v for k, v in s.result().items()})
        return loss_total / n, metrics

    def _schedule(self, monitored: float) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, epoch: int) -> dict[str, Any]:
        """Everything needed to go on after ``epoch`` as if the run had never stopped (see :mod:`.checkpoint`)."""
        return make_checkpoint(self, epoch)

    def _save_checkpoints(self, epoch: int, improved: bool) -> Iterator[CheckpointSaved]:
        state = self.checkpoint(epoch)
        paths = self.writer.checkpoint(lambda tmp: torch.save(state, tmp), epoch, improved)
        self.writer.update(best_epoch=self.best[1], best_loss=self.best[0])
        for path in paths:
            yield CheckpointSaved(path=str(path), epoch=epoch, best=path.name == "best.pt")


@dataclass
class _Pace:
    """What the progress figures of a run are counted from: its start, its first step and its length.

    The speed is measured from ``first_step`` at ``t_rate``: the start, or the last resume (a pause is
    not training time, and the batch size may have changed).
    """

    first_step: int
    total_steps: int
    batch_size: int
    t_start: float = field(default_factory=time.perf_counter)
    t_rate: float = field(default_factory=time.perf_counter)


class _EpochPart:
    """How far an epoch has gone through its shuffled ``order``: samples and batches trained, and its end.

    ``end`` is where the epoch stops (one sample short when a last batch of one would reach BatchNorm);
    a new batch size while paused goes on from where the epoch stands (:meth:`resize`).
    """

    def __init__(self, order: torch.Tensor, batch_size: int, end: int) -> None:
        self.order, self.batch_size, self.end = order, batch_size, end
        self.pos = 0  # samples trained
        self.batch = 0  # batches trained

    @property
    def done(self) -> bool:
        return self.pos >= self.end

    @property
    def batches(self) -> int:
        """The epoch's number of batches (those trained and those to come)."""
        return self.batch + math.ceil(max(self.end - self.pos, 0) / self.batch_size)

    @property
    def fraction(self) -> float:
        """The share of the epoch's batches trained (the curves place a batch by it, as the step it ends)."""
        return self.batch / self.batches if self.batches else 1.0

    def next_batch(self) -> torch.Tensor:
        stop = min(self.pos + self.batch_size, self.end)
        idx = self.order[self.pos : stop]
        self.pos, self.batch = stop, self.batch + 1
        return idx

    def resize(self, batch_size: int, n: int, batchnorm: bool) -> None:
        """Go on with batches of ``batch_size`` over the rest of the ``n`` samples."""
        self.batch_size = batch_size
        rest = n - self.pos
        self.end = n - 1 if batchnorm and rest % batch_size == 1 else n


class _StoppedEarly(Exception):
    """Stop was pressed before training began (while the data loaded, say)."""


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # NOTE: not empty, or gone already


def _has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _data_info(train) -> dict[str, Any]:
    """What an exported model expects, from the raw training split: shape, value range, class names."""
    x = train.x
    info: dict[str, Any] = {"input_shape": list(train.input_shape), "dtype": "float32", "classes": train.classes}
    if x.numel():
        info.update(input_min=float(x.min()), input_max=float(x.max()))
    return info


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    return "CPU"


def _oom_message(batch_size: int, trainer: Trainer | None = None) -> str:
    """Out of memory: with the run's trainer, a batch size that fits (found by halving) and how to go on."""
    fits = _batch_that_fits(trainer, batch_size) if trainer is not None else None
    said = f"the GPU ran out of memory with batch size {batch_size}"
    if fits is None:
        return (f"{said}: lower the batch size, use fewer filters or smaller images, or turn on mixed precision"
                + _how_to_go_on(trainer, None))
    if fits == 0:
        return (f"{said}, and even a batch of 1 does not fit: use fewer filters or smaller images, "
                "or train on the CPU" + _how_to_go_on(trainer, None))
    return f"{said}; a batch of {fits} fits (tried by halving it)" + _how_to_go_on(trainer, fits)


def _batch_that_fits(trainer: Trainer, batch_size: int) -> int | None:
    """The largest of half, a quarter... of the batch for which one forward and backward fits; 0 if none, None
    when it could not be tried (the data stream from disk, or trying failed for another reason)."""
    from engine.devices import fits_on_device, largest_fitting_batch

    tensors = getattr(trainer, "_tensors", None) or {}
    model = trainer.model
    if model is None or getattr(trainer, "stream", None) is not None or "train" not in tensors:
        return None
    x, targets = tensors["train"]
    model.zero_grad(set_to_none=True)  # NOTE: the failed step's gradients, before anything is tried

    def step(size: int) -> None:
        kept = {k: b.detach().clone() for k, b in model.named_buffers()}  # NOTE: BatchNorm's statistics stay
        try:
            with trainer._autocast():
                loss = trainer._loss(model(x[:size]), {k: v[:size] for k, v in targets.items()})
            loss.backward()
        finally:
            model.zero_grad(set_to_none=True)
            with torch.no_grad():
                for k, b in model.named_buffers():
                    b.copy_(kept[k])

    try:
        found = largest_fitting_batch(lambda size: fits_on_device(step, size, trainer.device),
                                      min(batch_size, int(x.shape[0])))
    except Exception:  # noqa: BLE001 - a failure of another kind while trying: no size to suggest
        return None
    return found or 0


def _how_to_go_on(trainer: Trainer | None, size: int | None) -> str:
    """What is kept of the run and how to go on from it (with batch size ``size`` when one was found)."""
    writer = getattr(trainer, "writer", None)
    epoch = trainer.history[-1].get("epoch") if trainer is not None and trainer.history else None
    batch = f"the batch size {size}" if size else "a smaller batch size"
    if writer is None:
        return f". Train again with {batch}." if size else ""
    if not isinstance(epoch, int):
        return f". No epoch had finished, so there is no checkpoint yet: train again with {batch}."
    return (f". Nothing is lost: the run folder {writer.folder} keeps the checkpoint of epoch {epoch}. To go on "
            f"from it with {batch}: in the window set it in the Training setup, then Runs → Fork… from epoch "
            f"{epoch}; on the command line set training.batch_size in the project file, then "
            f"main.py train PROJECT --resume {writer.folder}")


def failure_message(exc: Exception, batch_size: int, trainer: Trainer | None = None) -> str:
    """What a person reads when training ends with ``exc``: what happened and what to try.

    Out of memory, with the run's ``trainer``, a smaller batch is tried on the same device to name one that fits.
    """
    if isinstance(exc, NetDesignerError):  # TrainingError, DataError, ...
        return str(exc)
    from engine.devices import is_out_of_memory

    if is_out_of_memory(exc):
        import traceback

        traceback.clear_frames(exc.__traceback__)  # NOTE: the failed step's tensors go before a smaller one is tried
        return _oom_message(batch_size, trainer)
    if isinstance(exc, RuntimeError):
        return f"training stopped with an error: {exc}"
    return f"training stopped with an error: {type(exc).__name__}: {exc}"
