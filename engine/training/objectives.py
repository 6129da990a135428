"""What each output head learns from: its loss and its metrics, computed as its declaration names them.

Every head type declares (:class:`engine.layers.heads.HeadSpec`, read through :mod:`engine.tasks`)
its target, its loss by name and how its metrics accumulate; this module resolves those names. A loss
is a ``torch.nn.functional`` function, or one of :data:`LOSSES` where PyTorch has none (the
perceptron's criterion). A block that offers several losses picks one with its ``loss`` setting; every
function here takes that choice as ``loss`` (None: the head's default), so training, the hardest-samples
view and the learning-rate finder all compute the loss the block shows. Metrics accumulate over batches (:class:`MetricSum`)
so validation on large sets needs no second pass and no big concatenations.

A segmentation output whose maps are smaller than its masks (the U-Net paper's valid convolutions)
meets them through :func:`crop_to_output`, here and in the probes' mask views: one rule for the
loss, the metrics and the pictures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.datacheck import crop_margins
from engine.tasks import HeadSpec, head_spec, main_metric  # noqa: F401 - main_metric re-exported


def crop_to_output(target, size):
    """``target`` (a tensor or array ``[..., H, W]``) cut to its centre ``size`` (h, w): the pixels the output predicts.

    Output pixel (i, j) of a segmentation output smaller than its masks predicts mask pixel
    (i + top, j + left) of :func:`~engine.datacheck.crop_margins`. ValueError, in words, when the
    maps are larger than the masks or a margin is odd (the data checks refuse such a network first).
    NOTE: standalone, on slicing alone (torch or numpy): the training package's train.py gets this source.
    """
    have = tuple(target.shape[-2:])
    h, w = int(size[0]), int(size[1])
    if have == (h, w):
        return target
    margins = crop_margins(have, (h, w))
    if margins is None:
        raise ValueError(f"{h}×{w} output maps do not fit {have[0]}×{have[1]} masks: the masks are cropped to the "
                         "maps only when the maps are smaller by an even margin in height and in width")
    top, left = margins
    return target[..., top : top + h, left : left + w]


def perceptron_criterion(scores, target, reduction: str = "mean"):
    """The perceptron criterion: ``relu(−t·z)`` per score ``z``, with the 0/1 targets coded ``t = 2·target − 1``.

    A score above 0 predicts 1 (the course's step: +1 where ``z > 0``, −1 otherwise). A correctly predicted
    score costs nothing and gets no gradient; a wrong one costs its distance ``−t·z`` and gets the gradient
    ``−t``, so plain SGD at rate η on one sample a batch adds ``η·t·x`` to the weights on a mistake only: the
    perceptron learning rule.
    NOTE: the mistakes are picked by the prediction rule, not by ``−t·z > 0``: a class-1 score of exactly 0 is
    a mistake (it predicts 0) and moves, where ``relu``'s zero gradient at 0 would leave zero weights stuck for
    ever. The value is ``relu(−t·z)`` everywhere. Standalone, on torch alone: the training package's train.py
    gets this source.
    """
    t = 2.0 * target - 1.0
    wrong = (scores > 0) != (t > 0)
    loss = torch.where(wrong, -t * scores, torch.zeros_like(scores))
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


#: the losses PyTorch does not have, by the name a head declaration gives them
LOSSES = {"perceptron_criterion": perceptron_criterion}


def loss_function(name: str):
    """The loss a head declares by ``name``: one of :data:`LOSSES`, else ``torch.nn.functional``'s function.

    KeyError naming it when there is neither (a head declaration's mistake, caught by the tests).
    """
    found = LOSSES.get(name) or getattr(F, name, None)
    if found is None:
        raise KeyError(f"there is no loss called {name!r} in torch.nn.functional or engine.training.objectives.LOSSES")
    return found


def fit_target(head: HeadSpec, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The target as the output meets it: a mask (N, H, W) cropped to the output's maps (N, C, h, w)."""
    return crop_to_output(target, out.shape[-2:]) if head.target == "mask" else target


def loss_inputs(meets: str, out, target):
    """(output, target) as a loss takes them, by how it ``meets`` the target (``engine.layers.heads.MEETS``).

    ``"indices"``: the class scores against the class indices; ``"one_hot"``: their softmax against one-hot
    targets; ``"sigmoid"``: the sigmoid of the scores against the 0/1 targets; ``"shaped"``: the output
    against the targets as floats shaped like it.
    NOTE: standalone, on torch alone: the training package's train.py gets this source.
    """
    if meets == "indices":
        return out, target
    if meets == "one_hot":
        return torch.softmax(out, 1), F.one_hot(target.long(), out.shape[1]).to(out.dtype)
    target = target.reshape(out.shape).float()
    return (torch.sigmoid(out), target) if meets == "sigmoid" else (out, target)


def _chosen(head_type: str, loss: str | None, out, target):
    """The chosen loss's function and its (output, target) for one head."""
    head = head_spec(head_type)
    choice = head.loss_choice(loss)
    return loss_function(choice.function), loss_inputs(choice.meets, out, fit_target(head, out, target))


def head_loss(head_type: str, out: torch.Tensor, target: torch.Tensor, loss: str | None = None) -> torch.Tensor:
    """The loss of one head on one batch (mean over the batch); ``loss``: the block's choice (None: the default)."""
    function, args = _chosen(head_type, loss, out, target)
    return function(*args)


def sample_losses(head_type: str, out: torch.Tensor, target: torch.Tensor, loss: str | None = None) -> torch.Tensor:
    """The loss of one head for each sample of a batch (N,): the mean over its pixels or numbers."""
    function, args = _chosen(head_type, loss, out, target)
    return function(*args, reduction="none").reshape(out.shape[0], -1).mean(1)


def mixed_loss(head_type, out, target, mix, loss: str | None = None) -> torch.Tensor:
    """Loss under mixup: ``lam·L(y) + (1−lam)·L(y[perm])`` (the plain loss when ``mix`` is None).

    NOTE: mixup mixes the losses, not the targets, so every loss takes it: class indices stay indices
    (the hinge and the one-hot MSE need no soft labels) and 0/1 targets stay 0/1.
    """
    if mix is None:
        return head_loss(head_type, out, target, loss)
    perm, lam = mix
    return lam * head_loss(head_type, out, target, loss) + (1 - lam) * head_loss(head_type, out, target[perm], loss)


class MetricSum:
    """Running sums for one head's metrics over many batches, as its declaration's ``sums`` says."""

    def __init__(self, head_type: str) -> None:
        self.head_type = head_type
        self.head = head_spec(head_type)
        self.sums = SUMS[self.head.sums]()

    @torch.no_grad()
    def update(self, out: torch.Tensor, target: torch.Tensor) -> None:
        self.sums.update(out, fit_target(self.head, out, target))

    def result(self) -> dict[str, float]:
        """The head's declared metrics so far ({} before any sample)."""
        return self.sums.result() if self.sums.n else {}


class _ClassCounts:
    """Class scores along dimension 1 against class indices: correct predictions and the confusion matrix."""

    def __init__(self) -> None:
        self.n = 0
        self.correct = 0.0
        self.confusion: torch.Tensor | None = None

    def update(self, out: torch.Tensor, target: torch.Tensor) -> None:
        pred = out.argmax(1)
        self.correct += (pred == target).sum().item()
        self.n += target.numel()
        k = out.shape[1]
        idx = (target.reshape(-1) * k + pred.reshape(-1)).to(torch.int64)
        counts = torch.bincount(idx, minlength=k * k)[: k * k].reshape(k, k).cpu()
        self.confusion = counts if self.confusion is None else self.confusion + counts

    def result(self) -> dict[str, float]:
        return {"accuracy": self.correct / self.n}


class _PixelCounts(_ClassCounts):
    """:class:`_ClassCounts` of every pixel: pixel accuracy and the mean IoU of the classes."""

    def result(self) -> dict[str, float]:
        return {"pixel_accuracy": self.correct / self.n, "iou": mean_iou(self.confusion)}


class _BinaryCounts:
    """Logits against 0/1 targets: a logit above 0 predicts 1."""

    def __init__(self) -> None:
        self.n = 0
        self.correct = 0.0

    def update(self, out: torch.Tensor, target: torch.Tensor) -> None:
        self.correct += ((out > 0) == (target.view_as(out) > 0.5)).sum().item()
        self.n += out.numel()

    def result(self) -> dict[str, float]:
        return {"accuracy": self.correct / self.n}


class _Errors:
    """Predicted numbers against true ones: absolute and squared errors, and the targets' spread for R²."""

    def __init__(self) -> None:
        self.n = 0
        self.abs_err = self.sq_err = self.sum_y = self.sum_y2 = 0.0

    def update(self, out: torch.Tensor, target: torch.Tensor) -> None:
        t = target.view_as(out).float()
        o = out.float()
        self.abs_err += (o - t).abs().sum().item()
        self.sq_err += ((o - t) ** 2).sum().item()
        self.sum_y += t.sum().item()
        self.sum_y2 += (t**2).sum().item()
        self.n += t.numel()

    def result(self) -> dict[str, float]:
        mean = self.sum_y / self.n
        sst = self.sum_y2 - self.n * mean * mean
        return {"mae": self.abs_err / self.n, "r2": 1.0 - self.sq_err / sst if sst > 1e-12 else 0.0}


class _BoxOverlap:
    """Predicted boxes against true ones: their IoU and the mean absolute error of the 4 numbers."""

    def __init__(self) -> None:
        self.n = 0
        self.iou_sum = self.abs_err = 0.0

    def update(self, out: torch.Tensor, target: torch.Tensor) -> None:
        self.iou_sum += box_iou(out.float(), target.float()).sum().item()
        self.abs_err += (out - target).abs().sum().item()
        self.n += out.shape[0]

    def result(self) -> dict[str, float]:
        return {"box_iou": self.iou_sum / self.n, "box_mae": self.abs_err / (4 * self.n)}


#: a head declaration's ``sums`` -> the accumulator of its metrics
SUMS = {"classes": _ClassCounts, "pixels": _PixelCounts, "binary": _BinaryCounts, "values": _Errors, "boxes": _BoxOverlap}


def mean_iou(confusion: torch.Tensor | None) -> float:
    """Mean intersection-over-union over the classes that occur (in truth or prediction)."""
    if confusion is None:
        return 0.0
    c = confusion.double()
    inter = c.diag()
    union = c.sum(0) + c.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else 0.0


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes given as (x, y, w, h) with (x, y) the top-left corner; one value per row."""
    ax2, ay2 = a[:, 0] + a[:, 2].clamp(min=0), a[:, 1] + a[:, 3].clamp(min=0)
    bx2, by2 = b[:, 0] + b[:, 2].clamp(min=0), b[:, 1] + b[:, 3].clamp(min=0)
    iw = (torch.minimum(ax2, bx2) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(ay2, by2) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = a[:, 2].clamp(min=0) * a[:, 3].clamp(min=0) + b[:, 2] * b[:, 3] - inter
    return inter / union.clamp(min=1e-9)
