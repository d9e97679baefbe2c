"""The Japanese catalogue: complete, not fuzzy, placeholders intact, compiled, and used.

The .po file is read with a small parser here and the .mo with Python's own ``gettext``,
so these tests need no gettext tools (msgfmt, xgettext) on the machine that runs them.
After editing locale/ja/LC_MESSAGES/django.po, recompile it:
``python manage.py compilemessages -l ja`` (or ``msgfmt --check -o django.mo django.po``).
"""

from __future__ import annotations

import gettext as pygettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.utils import translation

from curation.models import UserSettings

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale" / "ja" / "LC_MESSAGES"
PO_PATH = LOCALE_DIR / "django.po"
MO_PATH = LOCALE_DIR / "django.mo"

# printf-style placeholders as Python's % operator reads them: %(name)s, %(n)d, %s, %d, %r...
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*\d*(?:\.\d+)?[sdifrxXeEgGc]")
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)  # plural index -> text; 0 for singular entries
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None

    def __str__(self) -> str:
        return f"line {self.line}: {self.msgid!r}"


def _unquote(text: str) -> str:
    text = text.strip()
    assert text.startswith('"') and text.endswith('"'), f"not a quoted PO string: {text!r}"
    return re.sub(r"\\(.)", lambda m: ESCAPES[m.group(1)], text[1:-1])


def parse_po(path: Path) -> list[Entry]:
    """Entries of a .po file: msgctxt, msgid, msgid_plural, msgstr and msgstr[N] with their
    continuation lines, and the `#,` flags. Obsolete entries (`#~`) are left out."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] | None = None  # the keyword a continuation line adds to

    def current(number: int) -> Entry:
        nonlocal entry
        if entry is None:
            entry = Entry(line=number)
            entries.append(entry)
        return entry

    def append(key: tuple[str, int], text: str) -> None:
        assert entry is not None
        name, index = key
        if name == "msgstr":
            entry.msgstr[index] = entry.msgstr.get(index, "") + text
        else:
            setattr(entry, name, (getattr(entry, name) or "") + text)

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            entry, target = None, None
        elif line.startswith("#,"):
            current(number).flags.update(flag.strip() for flag in line[2:].split(",") if flag.strip())
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert target is not None, f"line {number}: a string continues nothing"
            append(target, _unquote(line))
        else:
            keyword, _, rest = line.partition(" ")
            if entry is not None and keyword in ("msgid", "msgctxt") and entry.msgstr:
                entry = None  # a new entry with no blank line before it
            if match := re.fullmatch(r"msgstr\[(\d+)\]", keyword):
                target = ("msgstr", int(match.group(1)))
            elif keyword in ("msgid", "msgid_plural", "msgctxt", "msgstr"):
                target = (keyword, 0)
            else:
                raise AssertionError(f"line {number}: unknown keyword {keyword!r}")
            current(number)
            if target[0] != "msgstr":
                setattr(entry, target[0], "")
            append(target, _unquote(rest))
    return entries


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text.replace("%%", "")))


ENTRIES = parse_po(PO_PATH)
MESSAGES = [e for e in ENTRIES if not e.is_header]


def test_the_po_file_has_messages_and_a_japanese_header() -> None:
    headers = [e for e in ENTRIES if e.is_header]
    assert len(headers) == 1
    header = headers[0].msgstr[0]
    assert "Language: ja\n" in header
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header
    assert "charset=UTF-8" in header
    assert len(MESSAGES) > 300


def test_every_message_is_translated() -> None:
    untranslated = [str(e) for e in MESSAGES if not e.msgstr or any(not text for text in e.msgstr.values())]
    assert untranslated == []


def test_no_message_is_marked_fuzzy() -> None:
    assert [str(e) for e in ENTRIES if "fuzzy" in e.flags] == []


def test_plural_messages_have_exactly_the_one_japanese_form() -> None:
    wrong = [str(e) for e in MESSAGES if e.msgid_plural is not None and sorted(e.msgstr) != [0]]
    assert wrong == []


def test_singular_messages_have_a_plain_msgstr() -> None:
    wrong = [str(e) for e in MESSAGES if e.msgid_plural is None and sorted(e.msgstr) != [0]]
    assert wrong == []


def test_every_translation_keeps_the_placeholders_of_its_msgid() -> None:
    mismatched = []
    for e in MESSAGES:
        expected = placeholders(e.msgid) | placeholders(e.msgid_plural or "")
        for index, text in e.msgstr.items():
            if placeholders(text) != expected:
                mismatched.append(f"{e} msgstr[{index}] has {sorted(placeholders(text))}, expected {sorted(expected)}")
    assert mismatched == []


def test_the_compiled_mo_file_matches_the_po_file() -> None:
    """A .po edited without recompiling the .mo fails here."""
    with MO_PATH.open("rb") as fp:
        catalogue = pygettext.GNUTranslations(fp)
    assert catalogue.info().get("plural-forms") == "nplurals=1; plural=0;"
    stale = []
    for e in MESSAGES:
        expected = e.msgstr[0]
        if e.msgid_plural is not None:
            got = [
                catalogue.npgettext(e.msgctxt, e.msgid, e.msgid_plural, n)
                if e.msgctxt is not None
                else catalogue.ngettext(e.msgid, e.msgid_plural, n)
                for n in (1, 2, 5)
            ]
            if got != [expected] * 3:
                stale.append(f"{e}: .mo has {got!r}, .po has {expected!r}")
        else:
            got_one = catalogue.pgettext(e.msgctxt, e.msgid) if e.msgctxt is not None else catalogue.gettext(e.msgid)
            if got_one != expected:
                stale.append(f"{e}: .mo has {got_one!r}, .po has {expected!r}")
    assert stale == []
    # Nothing in the .mo that the .po no longer has (keys are msgid, or (msgid, n) for plurals).
    po_ids = {e.msgid if e.msgctxt is None else f"{e.msgctxt}\x04{e.msgid}" for e in MESSAGES} | {""}
    mo_ids = {key[0] if isinstance(key, tuple) else key for key in catalogue._catalog}
    assert mo_ids - po_ids == set()


def test_django_translates_into_japanese_when_japanese_is_active() -> None:
    with translation.override("ja"):
        assert translation.gettext("Projects") == "プロジェクト"
        assert translation.gettext("Sign out") == "ログアウト"
        assert translation.gettext("Label") == "ラベル"
        changed = translation.ngettext("%(n)d example changed.", "%(n)d examples changed.", 3) % {"n": 3}
        assert changed == "3件のサンプルを変更しました。"
    with translation.override("en"):
        assert translation.gettext("Projects") == "Projects"


@pytest.mark.django_db
def test_a_person_who_chose_japanese_sees_the_home_page_in_japanese(client, django_user_model) -> None:
    user = django_user_model.objects.create_user(username="hanako", password="any password 1")
    UserSettings.objects.create(user=user, language="ja")
    assert client.login(username="hanako", password="any password 1")

    response = client.get("/")

    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="ja">' in page
    assert "プロジェクト" in page
    assert "ログアウト" in page
    assert response.headers["Content-Language"] == "ja"


@pytest.mark.django_db
def test_the_sign_in_page_follows_a_japanese_browser(client) -> None:
    response = client.get("/accounts/login/", headers={"accept-language": "ja"})

    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="ja">' in page
    assert "ユーザー名" in page and "パスワード" in page
