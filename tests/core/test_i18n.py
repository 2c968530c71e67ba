"""The catalogues are complete: every text extracted, every Russian message translated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from core import i18n
from core.services import emails

LOCALES_DIR = i18n.LOCALES_DIR
RUSSIAN = sorted((LOCALES_DIR / "ru" / "LC_MESSAGES").glob("*.po"))
# `%(name)s` in the email templates' messages, `{name}` in the notification texts.
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def catalog(path: Path) -> Catalog:
    """One .po or .pot file, parsed."""
    with path.open("rb") as handle:
        return read_po(handle, locale=path.parent.parent.name if path.suffix == ".po" else None)


def ids(source: Catalog) -> set[str]:
    """The msgids of a catalogue (the singular of a plural entry)."""
    return {m.id[0] if isinstance(m.id, tuple) else m.id for m in source if m.id}


def placeholders(text: str) -> set[str]:
    """The names a message fills in."""
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def test_there_are_russian_catalogues_for_both_domains() -> None:
    """The notification texts (messages) and the emails (emails)."""
    assert {p.name for p in RUSSIAN} >= {"messages.po", "emails.po"}


@pytest.mark.parametrize("path", RUSSIAN, ids=lambda p: p.name)
def test_every_russian_message_is_translated(path: Path) -> None:
    """No empty msgstr (in any plural form) and no fuzzy entry: gettext would show English."""
    source = catalog(path)
    assert source.num_plurals == 3 and not source.fuzzy
    untranslated: list[object] = []
    for message in source:
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = source.num_plurals if message.pluralizable else 1
        if message.fuzzy or len(forms) != expected or not all(forms):
            untranslated.append(message.id)
    assert untranslated == []


def _expected_names(message: Message) -> set[str]:
    """What every translated form must fill in: the plural msgid's names for a counted text."""
    return placeholders(message.id[-1] if isinstance(message.id, tuple) else message.id)


@pytest.mark.parametrize("path", RUSSIAN, ids=lambda p: p.name)
def test_russian_translations_fill_in_the_same_values(path: Path) -> None:
    """A misspelt placeholder would raise at render time; a dropped one would lose a value."""
    wrong = []
    for message in catalog(path):
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        for form in forms:
            if placeholders(form) != _expected_names(message):
                wrong.append((message.id, form))
    assert wrong == []


@pytest.mark.parametrize("pot", sorted(LOCALES_DIR.glob("*.pot")), ids=lambda p: p.name)
def test_every_locale_has_every_message_of_the_template(pot: Path) -> None:
    """`make messages` was run after the template changed: each locale's catalogue is updated."""
    expected = ids(catalog(pot))
    for locale in i18n.locales():
        po = LOCALES_DIR / locale / "LC_MESSAGES" / f"{pot.stem}.po"
        assert po.is_file(), po
        assert ids(catalog(po)) == expected, (locale, pot.name)


def test_the_emails_template_has_every_text_of_the_email_templates() -> None:
    """Extracting email_templates/ again finds exactly what emails.pot holds."""
    with (LOCALES_DIR / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    extracted = {
        message[0] if isinstance(message, tuple) else message
        for _, _, message, _, _ in extract_from_dir(
            str(emails.TEMPLATE_DIR), method_map, options_map
        )
    }
    assert extracted == ids(catalog(LOCALES_DIR / "emails.pot"))
