"""What each output head learns from: its target, its loss and its metrics.

Every head type names one target of a :class:`engine.data.Dataset` and one loss.
Metrics accumulate over batches (:class:`MetricSum`) so validation on large sets
needs no second pass and no big concatenations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


# NOTE: the tables live in engine.tasks, free of PyTorch, so the window can read them without it
from engine.tasks import HEAD_TARGETS, LOSS_NAMES, MAIN_METRIC, main_metric  # noqa: E402,F401 - re-exported


def head_loss(head_type: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss of one head on one batch (mean over the batch)."""
    if head_type in ("ClassificationOutput", "SegmentationOutput"):
        return F.cross_entropy(out, target)
    if head_type == "BinaryOutput":
        return F.binary_cross_entropy_with_logits(out, target.view_as(out))
    return F.mse_loss(out, target.view_as(out))


def mixed_loss(head_type, out, target, mix) -> torch.Tensor:
    """Loss under mixup: ``lam·L(y) + (1−lam)·L(y[perm])`` (the plain loss when ``mix`` is None)."""
    if mix is None:
        return head_loss(head_type, out, target)
    perm, lam = mix
    return lam * head_loss(head_type, out, target) + (1 - lam) * head_loss(head_type, out, target[perm])


@dataclass
class MetricSum:
    """Running sums for one head's metrics over many batches."""

    head_type: str
    classes: int = 0
    n: int = 0
    correct: float = 0.0
    abs_err: float = 0.0
    sq_err: float = 0.0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    iou_sum: float = 0.0
    confusion: torch.Tensor | None = field(default=None, repr=False)

    @torch.no_grad()
    def update(self, out: torch.Tensor, target: torch.Tensor) -> None:
        kind = self.head_type
        if kind == "ClassificationOutput":
            pred = out.argmax(1)
            self.correct += (pred == target).sum().item()
            self.n += target.numel()
            self._confuse(pred, target, out.shape[1])
        elif kind == "BinaryOutput":
            pred = out > 0
            self.correct += (pred == (target.view_as(out) > 0.5)).sum().item()
            self.n += out.numel()
        elif kind == "SegmentationOutput":
            pred = out.argmax(1)
            self.correct += (pred == target).sum().item()
            self.n += target.numel()
            self._confuse(pred, target, out.shape[1])
        elif kind == "BoxOutput":
            self.iou_sum += box_iou(out.float(), target.float()).sum().item()
            self.abs_err += (out - target).abs().sum().item()
            self.n += out.shape[0]
        else:
            t = target.view_as(out).float()
            o = out.float()
            self.abs_err += (o - t).abs().sum().item()
            self.sq_err += ((o - t) ** 2).sum().item()
            self.sum_y += t.sum().item()
            self.sum_y2 += (t**2).sum().item()
            self.n += t.numel()

    def _confuse(self, pred: torch.Tensor, target: torch.Tensor, k: int) -> None:
        idx = (target.reshape(-1) * k + pred.reshape(-1)).to(torch.int64)
        counts = torch.bincount(idx, minlength=k * k)[: k * k].reshape(k, k).cpu()
        self.confusion = counts if self.confusion is None else self.confusion + counts
        self.classes = k

    def result(self) -> dict[str, float]:
        """The metrics so far (accuracy; MAE and R² for regression; IoU for masks and boxes)."""
        if self.n == 0:
            return {}
        kind = self.head_type
        if kind in ("ClassificationOutput", "BinaryOutput"):
            return {"accuracy": self.correct / self.n}
        if kind == "SegmentationOutput":
            return {"pixel_accuracy": self.correct / self.n, "iou": mean_iou(self.confusion)}
        if kind == "BoxOutput":
            return {"box_iou": self.iou_sum / self.n, "box_mae": self.abs_err / (4 * self.n)}
        mean = self.sum_y / self.n
        sst = self.sum_y2 - self.n * mean * mean
        return {"mae": self.abs_err / self.n, "r2": 1.0 - self.sq_err / sst if sst > 1e-12 else 0.0}


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
