"""Compact counts ("25.6M", "1.03G"): checked against exact integer arithmetic over a spread of values."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from engine.analysis import format_count

UNITS = {3: "k", 6: "M", 9: "G", 12: "T"}
SPREAD = [0, 1, 9, 999, 1000, 1001, 1049, 1050, 9_999, 99_949, 99_950, 999_499, 999_500, 999_999, 1_000_000,
          1_045_000, 1_055_000, 1_049_999, 25_557_032, 61_706, 3_400_000, 118_013_952, 999_999_999,
          4_100_000_000, 4_089_184_256, 1_500_000_000_000, 999_600_000_000_000]


def round_significant(n: int, digits: int) -> int:
    """``n`` rounded to ``digits`` significant digits, half to even, in integers (no floats)."""
    extra = len(str(n)) - digits
    if extra <= 0:
        return n
    step = 10**extra
    kept, rest = divmod(n, step)
    if 2 * rest > step or (2 * rest == step and kept % 2):
        kept += 1
    return kept * step


def expected(n: int, digits: int) -> str:
    """What a person should read for ``n``: under 1000 itself; else rounded first, then in k, M, G or T."""
    if n < 1000:
        return str(n)
    rounded = round_significant(n, digits)
    power = min((len(str(rounded)) - 1) // 3 * 3, 12)
    value = Decimal(rounded).scaleb(-power).normalize()
    return f"{value:f}" + UNITS[power]


def back(text: str) -> Decimal:
    """The number a compact count stands for ("1.05M" -> 1050000)."""
    powers = {unit: power for power, unit in UNITS.items()}
    return Decimal(text[:-1]).scaleb(powers[text[-1]]) if text[-1] in powers else Decimal(text)


@pytest.mark.parametrize("digits", [2, 3])
def test_compact_counts_match_exact_arithmetic(digits):
    rng = random.Random(11)
    spread = SPREAD + [int(10 ** rng.uniform(0, 15)) for _ in range(3000)]
    wrong = [(n, format_count(n, digits), expected(n, digits)) for n in spread
             if format_count(n, digits) != expected(n, digits)]
    assert wrong == []


@pytest.mark.parametrize("n,digits,text", [
    (0, 3, "0"), (999, 3, "999"), (1000, 3, "1k"), (1_049_999, 3, "1.05M"), (1_049_999, 2, "1M"),
    (25_557_032, 3, "25.6M"), (25_557_032, 2, "26M"), (4_100_000_000, 3, "4.1G"), (1_500_000_000_000, 3, "1.5T"),
    (999_999, 3, "1M"), (123_456_789, 2, "120M"), (218_000_000, 3, "218M"),
])
def test_compact_counts_read_as_a_person_writes_them(n, digits, text):
    assert format_count(n, digits) == text


def test_a_compact_count_is_within_half_a_unit_of_its_last_significant_digit():
    rng = random.Random(5)
    for n in [int(10 ** rng.uniform(3, 15)) for _ in range(2000)]:
        for digits in (2, 3):
            shown = format_count(n, digits)
            place = Decimal(10) ** max(len(str(n)) - digits, 0)
            assert abs(back(shown) - n) <= place / 2, (n, digits, shown)
            assert shown[-1] in UNITS.values() and (Decimal(shown[:-1]) < 1000 or shown[-1] == "T"), shown
