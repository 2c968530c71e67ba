"""Money as integer minor units inside, two-decimal strings outside; never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENTS = Decimal("0.01")


def to_minor(amount: Decimal) -> int:
    """Convert a decimal amount with at most two places into minor units."""
    return int((amount.quantize(CENTS, rounding=ROUND_HALF_UP) * 100).to_integral_value())


def to_decimal(minor: int) -> Decimal:
    """Convert minor units to a two-place Decimal."""
    return (Decimal(minor) / 100).quantize(CENTS)


def format_minor(minor: int) -> str:
    """The canonical string form of an amount, e.g. "1500.00"."""
    return str(to_decimal(minor))


def fee_of(price: int, percent: Decimal) -> int:
    """The platform fee in minor units for a price, rounded half up."""
    return int((Decimal(price) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
