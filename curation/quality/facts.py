"""Is the task about form or about facts?

Fine-tuning teaches form well: tone, format, structure, what to leave out. It is a poor way to
teach new facts: a small model trained on a few thousand answers that name people, dates and
prices learns to produce names, dates and prices that sound right, and many will be wrong.
Facts belong in the prompt, fetched by retrieval. So a project whose answers are mostly made of
facts that the prompt does not hold deserves a warning before anyone trains on it.

The heuristic, on purpose simple enough to explain on the page that shows it:

- "Fact tokens" in a text are URLs and e-mail addresses; dates (2024-05-01, May 1, 2024,
  2024年5月1日, 令和6年; all turned into ISO form so that different spellings match); numbers,
  with their decimals, currency sign or unit (3.5, 1,250, $12.99, 20 kg, 30%), except whole
  numbers from 0 to 10 written alone and list numbering at the start of a line; capitalised
  names that do not open a sentence (runs such as "Akio Morita" are one token; a run opening a
  sentence counts when it has two words or more, or after a word such as "The"); in Japanese,
  katakana words of three characters or more, and kanji names followed by 氏, さん, 様, 社, 市,
  県, 都, 大学 and the like (the name without an honorific, with 社 or 市).
- A fact in an answer is "in the prompt" when the system and user messages hold it too, as a
  fact token or as text (whole words for Latin letters and digits), compared after NFKC
  normalisation and case folding.
- An example "brings new facts" when its answers hold at least `min_new` fact tokens that are
  not in the prompt, and those are at least half of the answers' fact tokens.

It errs towards silence: a Japanese name found inside a longer one of the prompt counts as
present, numbers written in kanji and kanji names without a suffix are not found at all, and
one or two new facts in an answer full of the prompt's own are not enough to flag it.

Plain Python: messages in OpenAI chat shape in, tokens and counts out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from text.cjk import KANJI_CLASS

Conversation = list[dict[str, Any]]

MAX_SAMPLES = 10

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
# The year before each era's first year: 令和元年 is 2019.
ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925, "大正": 1911, "明治": 1867}

_MONTH = "(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"

_LIST_MARKER = re.compile(r"^[ \t]*(?:\d{1,3}[.)]|[-*•])[ \t]+", re.MULTILINE)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'）」]+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATES = [
    re.compile(
        rf"(?P<era>{'|'.join(ERAS)})(?P<year>元|\d{{1,2}})年(?:(?P<month>\d{{1,2}})月(?:(?P<day>\d{{1,2}})日)?)?"
    ),
    re.compile(r"(?P<year>\d{4})年(?:(?P<month>\d{1,2})月(?:(?P<day>\d{1,2})日)?)?"),
    re.compile(r"(?P<month>\d{1,2})月(?P<day>\d{1,2})日"),
    re.compile(r"(?<![\d.])(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?![\d])"),
]
# Only tried on texts that name a month: they are the slowest patterns here.
_ANY_MONTH = re.compile(rf"\b{_MONTH}", re.IGNORECASE)
_ENGLISH_DATES = [
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_DAY}\s+{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+{_DAY}\b(?!\s*%)", re.IGNORECASE),
]
_UNITS = (
    "%|円|万円|億円|万|億|ドル|人|歳|個|件|km|kg|mg|mb|gb|tb|kb|ghz|mhz|ml|cm|mm|mph|°c|°f|m|g|l|"
    "percent|dollars?|yen|euros?|miles?|meters?|metres?|kilometers?|kilograms?|grams?|hours?|minutes?|seconds?"
)
_NUMBER = re.compile(
    r"(?P<currency>[$¥€£])?[ \t]?"
    r"(?<![\w.,])(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d]|\.\d|,\d{3})"
    rf"(?:[ \t]?(?P<unit>{_UNITS})(?![a-z]))?",
    re.IGNORECASE,
)
_KATAKANA = re.compile(r"[ァ-ヺ][ァ-ヺー・]{2,}")
_HONORIFICS = ("氏", "さん", "様", "先生")
_KANJI_NAME = re.compile(
    rf"(?<![{KANJI_CLASS}])(?P<name>[{KANJI_CLASS}]{{2,6}}?)"
    r"(?P<suffix>氏|さん|様|先生|株式会社|社|市|県|都|府|道|区|町|村|大学|銀行|病院|駅|省|庁)"
)
# Words the suffixes above catch that name nothing in particular.
_COMMON_KANJI = frozenset({"株式会社", "有限会社", "合同会社", "子会社", "親会社", "出版社", "新聞社"})
_CAPITALISED_RUN = re.compile(r"[A-Z][A-Za-z'’-]*[A-Za-z](?:[ \t]+[A-Z][A-Za-z'’-]*[A-Za-z])*")
# What may come right before the first word of a sentence (or of a quoted value, a heading, a list item).
_OPENERS = frozenset(".!?:;。！？\n\"“‘'(「『【#>*-")
_ABBREVIATIONS = ("mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "mt.", "jr.", "sr.", "vs.", "no.")
# Titles are left out of names, so that "Mr Tanaka" in the answer is found as "Ms. Tanaka" in the prompt.
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir"})
_POSSESSIVE = re.compile(r"['’]s$")
# Words that open sentences and say nothing by themselves: "The Tokyo office" names "Tokyo Office".
_SENTENCE_STARTERS = frozenset(
    """a an and also after at before but by dear during for from good hello here hi how if in it its
    my no of on our please since so sure thank thanks that the their then there these this those to
    today tomorrow we what when where which while who why with yes yesterday you your""".split()
)


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    # A filler of the same length keeps the other positions; it is no word, no space and no
    # sentence end, so names on either side are neither joined nor taken for sentence openers.
    if not spans:
        return text
    pieces: list[str] = []
    done = 0
    for start, end in spans:
        pieces += [text[done:start], "\x00" * (end - start)]
        done = end
    return "".join(pieces) + text[done:]


def _date_token(match: re.Match[str]) -> str | None:
    parts = match.groupdict()
    year = parts.get("year")
    if year is not None and parts.get("era"):
        year = str(ERAS[parts["era"]] + (1 if year == "元" else int(year)))
    month = parts.get("month")
    if month is not None and not month.isdigit():
        month = str(MONTHS[month.casefold()])
    day = parts.get("day")
    if (month is not None and not 1 <= int(month) <= 12) or (day is not None and not 1 <= int(day) <= 31):
        return None
    pieces = [year or "-", f"{int(month):02d}" if month else None, f"{int(day):02d}" if day else None]
    return "-".join(piece for piece in pieces if piece is not None)


def _number_token(match: re.Match[str]) -> str | None:
    number = match["number"].replace(",", "")
    unit = (match["unit"] or "").casefold()
    currency = match["currency"] or ""
    if not unit and not currency and "." not in number and int(number) <= 10:
        return None
    return f"{currency}{number}{unit}"


def _opens_sentence(text: str, start: int) -> bool:
    # What came just before is enough, and looking no further keeps long texts linear.
    before = text[max(0, start - 40) : start].rstrip(" \t")
    if not before or before[-1] in _OPENERS:
        return not before.casefold().endswith(_ABBREVIATIONS)
    return False


def fact_tokens(text: str) -> set[str]:
    """The facts in `text`, normalised (NFKC, case folded; dates in ISO form, numbers without commas)."""
    text = _LIST_MARKER.sub("", _normalise(text))
    tokens: set[str] = set()
    addresses = [_URL, _EMAIL] if "@" in text else [_URL]
    for pattern in addresses:
        spans = []
        for match in pattern.finditer(text):
            # Punctuation after an address ends the sentence, not the address.
            address = match.group().rstrip(".,;:!?)")
            tokens.add(address.rstrip("/").casefold())
            spans.append((match.start(), match.start() + len(address)))
        text = _blank(text, spans)
    dates = _DATES + _ENGLISH_DATES if _ANY_MONTH.search(text) else _DATES
    for pattern in dates:
        spans = []
        for match in pattern.finditer(text):
            token = _date_token(match)
            if token is not None:
                tokens.add(token)
                spans.append(match.span())
        text = _blank(text, spans)
    for match in _NUMBER.finditer(text):
        token = _number_token(match)
        if token is not None:
            tokens.add(token)
    tokens.update(match.group().strip("・") for match in _KATAKANA.finditer(text))
    for match in _KANJI_NAME.finditer(text):
        suffix = match["suffix"]
        name = match["name"] if suffix in _HONORIFICS else match["name"] + suffix
        if name not in _COMMON_KANJI:
            tokens.add(name)
    for match in _CAPITALISED_RUN.finditer(text):
        words = match.group().split()
        if _opens_sentence(text, match.start()):
            if words[0].casefold() in _SENTENCE_STARTERS:
                words = words[1:]
            elif len(words) == 1:
                # A capitalised word opening a sentence may be any word at all.
                continue
        name = " ".join(_POSSESSIVE.sub("", word) for word in words if word.casefold() not in _TITLES)
        if name:
            tokens.add(name.casefold())
    return tokens


def _texts(messages: Conversation, roles: tuple[str, ...]) -> str:
    return "\n".join(
        message["content"]
        for message in messages
        if message.get("role") in roles and isinstance(message.get("content"), str)
    )


def _in_prompt(token: str, prompt: str, prompt_tokens: set[str]) -> bool:
    if token in prompt_tokens:
        return True
    # A month and day without a year ("--05-03") is in the prompt when a full date there has them.
    if token.startswith("--") and any(other.endswith(token[1:]) for other in prompt_tokens):
        return True
    # Whole words only where words have edges, so that "46" is not found in "1946".
    edged = _is_word_character(token[0]) and _is_word_character(token[-1])
    start = prompt.find(token)
    while start != -1:
        end = start + len(token)
        if not edged or (
            (start == 0 or not _is_word_character(prompt[start - 1]))
            and (end == len(prompt) or not _is_word_character(prompt[end]))
        ):
            return True
        start = prompt.find(token, start + 1)
    return False


def _is_word_character(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _answer_facts(messages: Conversation) -> tuple[set[str], list[str]]:
    """All fact tokens of the answers, and those missing from the prompt (sorted)."""
    answer_tokens = fact_tokens(_texts(messages, ("assistant",)))
    prompt_text = _texts(messages, ("system", "user"))
    prompt = _normalise(prompt_text).casefold()
    prompt_tokens = fact_tokens(prompt_text)
    return answer_tokens, sorted(token for token in answer_tokens if not _in_prompt(token, prompt, prompt_tokens))


def new_facts(messages: Conversation) -> list[str]:
    """The answers' fact tokens that the prompt (system and user messages) does not hold, sorted."""
    return _answer_facts(messages)[1]


def _brings(answer_tokens: set[str], missing: list[str], min_new: int) -> bool:
    return len(missing) >= min_new and 2 * len(missing) >= len(answer_tokens)


def brings_new_facts(messages: Conversation, *, min_new: int = 2) -> bool:
    """Whether the answers hold at least `min_new` new facts, making up at least half of their facts."""
    return _brings(*_answer_facts(messages), min_new)


def assess(messages: Conversation, *, min_new: int = 2) -> tuple[bool, list[str]]:
    """(brings new facts, the new facts) in one pass over the example."""
    answer_tokens, missing = _answer_facts(messages)
    return _brings(answer_tokens, missing, min_new), missing


@dataclass(frozen=True)
class FactSummary:
    examples: int
    with_new_facts: int
    # with_new_facts / examples; 0.0 without examples.
    share: float
    # (index in the input, new facts) for the first examples that bring new facts.
    samples: list[tuple[int, list[str]]] = field(default_factory=list)


def summarise(conversations: Sequence[Conversation], *, min_new: int = 2) -> FactSummary:
    """How many examples bring new facts, with the first few as samples to show."""
    flagged = 0
    samples: list[tuple[int, list[str]]] = []
    for index, messages in enumerate(conversations):
        answer_tokens, missing = _answer_facts(messages)
        if _brings(answer_tokens, missing, min_new):
            flagged += 1
            if len(samples) < MAX_SAMPLES:
                samples.append((index, missing))
    total = len(conversations)
    return FactSummary(examples=total, with_new_facts=flagged, share=flagged / total if total else 0.0, samples=samples)
