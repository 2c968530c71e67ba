"""Money: integer minor units inside, Decimal at the edges, rounding half up, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.services.money import fee_of, format_minor, to_decimal, to_minor


@pytest.mark.parametrize(
    ("price", "percent", "fee"),
    [
        (150_000, Decimal("10"), 15_000),
        (1_005, Decimal("10"), 101),  # 100.5 rounds half up
        (1_004, Decimal("10"), 100),  # 100.4 rounds down
        (999, Decimal("12.5"), 125),  # 124.875
        (3, Decimal("50"), 2),  # 1.5
        (1, Decimal("49.99"), 0),  # 0.4999
        (12_345, Decimal("0"), 0),
        (12_345, Decimal("100"), 12_345),
        (10**15, Decimal("7.77"), 77_700_000_000_000),  # no float precision loss
    ],
)
def test_fee_is_the_percent_of_the_price_rounded_half_up(price, percent, fee):
    assert fee_of(price, percent) == fee
    assert isinstance(fee_of(price, percent), int)


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        (Decimal("1500"), 150_000),
        (Decimal("1500.00"), 150_000),
        (Decimal("0.01"), 1),
        (Decimal("10.005"), 1_001),
        (Decimal("10.004"), 1_000),
        (Decimal("0.1"), 10),
    ],
)
def test_to_minor_converts_decimals_rounding_half_up(amount, minor):
    assert to_minor(amount) == minor


@pytest.mark.parametrize(
    ("minor", "text"), [(150_000, "1500.00"), (1, "0.01"), (0, "0.00"), (904, "9.04")]
)
def test_minor_units_format_as_two_decimal_strings(minor, text):
    assert format_minor(minor) == text
    assert to_decimal(minor) == Decimal(text)
    assert to_minor(to_decimal(minor)) == minor


def test_floats_are_refused_rather_than_rounded_silently():
    with pytest.raises(TypeError):
        fee_of(1_000, 10.0)  # type: ignore[arg-type]
    with pytest.raises((TypeError, AttributeError)):
        to_minor(0.1)  # type: ignore[arg-type]
