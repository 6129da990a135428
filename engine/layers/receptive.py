"""Receptive-field arithmetic: exactly which input pixels each output pixel of a block sees.

Fields are square (every layer here treats height and width alike), so one axis tells all.
A layer declares, as an :class:`~engine.layers.registry.RF`, which pixels of its input one
output pixel reads (``RF.taps``); :class:`Windows` follows that through a whole network and
holds, for every output pixel, the span of network-input pixels it sees. The grid is taken
as unbounded (padding and borders ignored), so the spans are those of pixels far from an
edge; near an edge part of a span falls outside the image.

After an upsampling layer several output pixels read the same input pixel, so the spans no
longer move by the same amount from one pixel to the next: they move in a repeating pattern
of ``period`` pixels, ``step`` input pixels per period. :class:`Windows` keeps that pattern
exactly; ``size``, ``jump`` and ``offset`` sum it up (see :meth:`Windows.summary`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from engine.layers.registry import RF

Span = tuple[int, int]  # first and last input pixel, inclusive

#: Longest pattern followed exactly. Only a stack of large upsampling factors reaches it
#: (16 × 16 × 16); past it a block's field is reported as unknown rather than guessed.
MAX_PERIOD = 4096


@dataclass(frozen=True)
class Windows:
    """The input span of every output pixel along one axis.

    Output pixel ``i = q·period + r`` (``0 ≤ r < period``) sees input pixels
    ``lo + q·step .. hi + q·step`` where ``(lo, hi) = spans[r]``; a span of None means the
    pixel sees no input at all (a transposed convolution whose kernel is smaller than its
    stride leaves such gaps: those pixels are the bias alone).
    """

    period: int
    step: int
    spans: tuple[Span | None, ...]

    @classmethod
    def pixel(cls) -> Windows:
        """The input itself: pixel i sees pixel i."""
        return cls(1, 1, ((0, 0),))

    def span(self, i: int) -> Span | None:
        """The first and last input pixel that output pixel ``i`` sees (None: none)."""
        q, r = divmod(i, self.period)
        s = self.spans[r]
        return None if s is None else (s[0] + q * self.step, s[1] + q * self.step)

    def through(self, rule: RF) -> Windows | None:
        """The spans after a layer whose output pixel ``i`` reads input pixels ``rule.taps(i)``.

        None when the pattern would repeat only after more than :data:`MAX_PERIOD` pixels, or
        when no output pixel sees any input.
        """
        if self.period == 1 and rule.mode == "window":
            # NOTE: the common case, short-cut for speed (analysis runs on every edit): spans
            # that move evenly make a window's span run from its first tap's to its last tap's.
            (lo, hi), step = self.spans[0], self.step
            first = -rule.padding
            last = first + rule.dilation * (rule.kernel - 1)
            return Windows(1, step * rule.stride, ((lo + first * step, hi + last * step),))
        every, shift = rule.cycle()
        # NOTE: output pixel i + every reads the taps of i shifted by ``shift`` input pixels;
        # after n such cycles the shift is a whole number of our periods, so the pattern repeats.
        n = self.period // math.gcd(self.period, shift)
        period = n * every
        if period > MAX_PERIOD:
            return None
        spans = tuple(_unite(self.span(j) for j in rule.taps(i)) for i in range(period))
        if not any(spans):
            return None
        return Windows(period, n * shift // self.period * self.step, spans)

    def fixed(self) -> Windows | None:
        """Pixel 0's span for every output pixel: an input broadcast over the output (a C×1×1 gate)."""
        span = self.span(0)
        return None if span is None else Windows(1, 0, (span,))

    @staticmethod
    def union(many: list[Windows], pixels: int | None = None) -> Windows | None:
        """Each output pixel sees what it sees through any of ``many`` (a merge's inputs).

        Fixed windows (``step`` 0, :meth:`fixed`) join moving ones only where they hold them:
        then every one of the ``pixels`` output pixels sees the fixed span; otherwise the
        union is no repeating pattern, and None.

        NOTE: inputs whose spans advance at different rates (feature maps of different
        strides added together) share no repeating pattern; the union then takes the
        fastest rate and is exact for the first ``period`` pixels only.
        """
        if len(many) == 1:
            return many[0]
        fixed = [w for w in many if w.step == 0]
        if fixed:
            return _fixed_union(fixed, [w for w in many if w.step != 0], pixels)
        if all(w.period == 1 for w in many):  # the common case, short-cut for speed
            spans = [w.spans[0] for w in many]
            span = (min(s[0] for s in spans), max(s[1] for s in spans))
            return Windows(1, max(w.step for w in many), (span,))
        period = math.lcm(*(w.period for w in many))
        step = max(w.step * (period // w.period) for w in many)
        spans = tuple(_unite(w.span(i) for w in many) for i in range(period))
        return Windows(period, step, spans)

    def summary(self) -> tuple[float, float, float]:
        """``(size, jump, offset)`` of the field these spans make.

        * ``size``: the most input pixels, along one axis, that any output pixel sees.
        * ``jump``: how far the span moves per output pixel, ``step / period`` (below 1 after
          upsampling).
        * ``offset``: the centre line of the spans: pixel ``i``'s span is centred on
          ``offset + i·jump`` exactly when the period is 1; otherwise the centres step around
          that line and it is their mean over any ``period`` consecutive pixels.
        """
        if self.period == 1:  # the common case, kept free of fractions (analysis runs on every edit)
            lo, hi = self.spans[0]
            return float(hi - lo + 1), float(self.step), (lo + hi) / 2
        jump = Fraction(self.step, self.period)
        seen = [(r, s) for r, s in enumerate(self.spans) if s is not None]
        size = max(hi - lo + 1 for _, (lo, hi) in seen)
        offset = sum(Fraction(lo + hi, 2) - r * jump for r, (lo, hi) in seen) / len(seen)
        return float(size), float(jump), float(offset)

    @classmethod
    def from_summary(cls, size: float, jump: float, offset: float) -> Windows:
        """Spans of ``size`` pixels centred on ``offset + i·jump`` (a field known only by its summary).

        Centres that fall between pixels are rounded half up, as a crop of the field is placed.
        """
        ratio = Fraction(jump).limit_denominator(MAX_PERIOD)
        width = max(1, round(size))
        spans = []
        for r in range(ratio.denominator):
            lo = math.floor(offset + r * float(ratio) - (width - 1) / 2 + 0.5)
            spans.append((lo, lo + width - 1))
        return cls(ratio.denominator, ratio.numerator, tuple(spans))


def _fixed_union(fixed: list[Windows], moving: list[Windows], pixels: int | None) -> Windows | None:
    """The fixed spans united, when they hold every moving span of output pixels ``0 .. pixels − 1``."""
    span = _unite(w.spans[0] for w in fixed)
    if moving and (span is None or pixels is None):
        return None
    for w in moving:
        for i in range(pixels):
            s = w.span(i)
            if s is not None and not span[0] <= s[0] <= s[1] <= span[1]:
                return None
    return None if span is None else Windows(1, 0, (span,))


def _unite(spans: Iterable[Span | None]) -> Span | None:
    """The smallest span holding every given span (None when none is given)."""
    seen = [s for s in spans if s is not None]
    if not seen:
        return None
    return min(s[0] for s in seen), max(s[1] for s in seen)
