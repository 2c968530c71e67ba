"""Message catalogues, plural rules and money formatting per locale (gettext via Babel).

Every user-facing text (notification titles and messages, emails) is an English msgid looked
up in `core/locales/<locale>/LC_MESSAGES/*.po`; a language is one more folder of catalogues.
The .po files are compiled in memory on first use, so nothing generated is committed.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from io import BytesIO
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, get_currency_symbol
from babel.support import NullTranslations, Translations

from core.settings import ROOT

LOCALES_DIR = ROOT / "core" / "locales"
DEFAULT_LOCALE = "ru"
CURRENCY = "RUB"
# CLDR's currency spacing: a symbol made of letters ("RUB") is kept apart from the digits.
_GLUED_CODE = re.compile(r"(?<=[A-Z])(?=\d)|(?<=\d)(?=[A-Z])")


@lru_cache(maxsize=1)
def locales() -> tuple[str, ...]:
    """Every locale with a catalogue folder, the default first."""
    found = sorted(p.name for p in LOCALES_DIR.iterdir() if (p / "LC_MESSAGES").is_dir())
    return tuple(sorted(found, key=lambda name: name != DEFAULT_LOCALE))


def supported(locale: str | None) -> str:
    """The locale itself when there is a catalogue for it, else the default."""
    return locale if locale in locales() else DEFAULT_LOCALE


@lru_cache(maxsize=16)
def translations(locale: str) -> NullTranslations:
    """Every catalogue (domain) of the locale merged into one, compiled from its .po files."""
    merged: Translations | None = None
    for po_file in sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with po_file.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=po_file.stem)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        loaded = Translations(compiled, domain=po_file.stem)
        merged = loaded if merged is None else merged.merge(loaded)
    return merged if merged is not None else NullTranslations()


def gettext(locale: str, message: str) -> str:
    """The message in the locale (the English msgid where it has no translation)."""
    return translations(supported(locale)).gettext(message)


def ngettext(locale: str, singular: str, plural: str, n: int) -> str:
    """The form of a counted message that the locale's plural rule picks for `n`."""
    return translations(supported(locale)).ngettext(singular, plural, n)


def format_money(amount: Any, locale: str) -> str:
    """An amount ("1500.00", a Decimal) written for the locale: "1 500,00 ₽", "RUB 1,500.00"."""
    return _format_money(str(amount), supported(locale))


@lru_cache(maxsize=8192)
def _format_money(amount: str, locale: str) -> str:
    """Babel's formatting, cached: it is most of a render's cost and prices repeat."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        return amount  # a snapshot written by hand: shown as it is rather than lost
    text = format_currency(value, CURRENCY, locale=locale)
    if get_currency_symbol(CURRENCY, locale).isalpha():
        text = _GLUED_CODE.sub("\xa0", text)
    return text
