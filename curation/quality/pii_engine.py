"""Personal data through Microsoft Presidio: our patterns and GiNZA's names as Presidio
recognizers, one `AnalyzerEngine` for English and Japanese text, and the `AnonymizerEngine`
writing the placeholders.

Offline by construction. The analyzer gets its registry (only the recognizers below: Presidio's
predefined ones are never loaded, so neither is `tldextract`, which their e-mail and URL
recognizers use to download the public-suffix list on first use) and the no-op NLP engine
(Presidio's default engine loads en_core_web_lg, and downloads it when it is missing). No
English model is installed, so English names come from the cue patterns of `pii_names` ("Mr.",
"my name is"); in Japanese text GiNZA adds the names written with no cue (`pii_ginza`). A text
is Japanese when it holds kana, or kanji that are all in Japanese's character set (JIS X 0208,
through the cp932 codec: Chinese text nearly always holds a simplified character outside it, and
GiNZA misreads Chinese); only then is GiNZA loaded and run.

The patterns keep our formats and checks (`pii_patterns`: Japanese phone numbers, My Number,
postal codes, full-width digits). What a recognizer needs from the context is checked by the
recognizer on the characters around the finding, because Presidio's context enhancer reads the
NLP engine's lemmas, which the no-op engine does not make:

- A My Number needs a word such as マイナンバー, 個人番号, 番号 or "My Number" near it (24
  characters before, 12 after): one twelve-digit number in eleven passes the check digit, and
  sums and identifiers in English prose are full of them.
- A card number written without spaces or dashes needs "card", カード, クレジット or a network's
  name (Visa, JCB, ...) near it; numbers printed in groups, as cards are, need none.
- An international number (+...) must have a length its country allows (libphonenumber).
- A bare NNN-NNNN is a postal code only near 〒, 郵便, 住所, "address", "zip" or "postal", or
  before a prefecture (東京都, 大阪府, ...): elsewhere it is a range or a local phone number.
- "My Name Is" in title case is a title ("My Name Is Earl"), not someone giving their name, and
  an office after a title ("Mr. President") is not a name.

The analyzer is given the width-folded text (`pii_patterns.normalise`, one character for one),
so its offsets are the original text's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import phonenumbers
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as Replacement

from curation.quality import pii_ginza
from curation.quality.pii_patterns import FINDERS, PiiKind, normalise
from text.cjk import KANJI_CLASS

# Our kinds as Presidio's entity types (its own names where it has one).
ENTITIES: dict[str, str] = {
    PiiKind.EMAIL: "EMAIL_ADDRESS",
    PiiKind.PHONE: "PHONE_NUMBER",
    PiiKind.CREDIT_CARD: "CREDIT_CARD",
    PiiKind.IP_ADDRESS: "IP_ADDRESS",
    PiiKind.IBAN: "IBAN_CODE",
    PiiKind.MY_NUMBER: "JP_MY_NUMBER",
    PiiKind.POSTAL_CODE: "JP_POSTAL_CODE",
    PiiKind.NAME: "PERSON",
}
KINDS: dict[str, str] = {entity: str(kind) for kind, entity in ENTITIES.items()}
LANGUAGES = ("en", "ja")
RECOGNIZER_PREFIX = "shikomi_"
# Validated patterns are certain of their form; a model's person is a guess (spaCy gives no
# score, Presidio's default for one is 0.85). Nothing is dropped by score.
PATTERN_SCORE = 1.0
MODEL_SCORE = 0.85

_KANA = re.compile("[\u3041-\u3096\u30a1-\u30fa]")
_KANJI = re.compile(f"[{KANJI_CLASS}]")
# How far from a finding its cue may be, in characters, before it and after it.
_CUE_BEFORE = 24
_CUE_AFTER = 12
_MY_NUMBER_CUE = re.compile(r"マイナンバー|個人番号|番号|(?i:my ?number|individual number)")
_CARD_CUE = re.compile(r"カード|クレジット|(?i:card|visa|master|amex|american express|jcb|diners|discover|unionpay)")
_POSTAL_CUE = re.compile(r"〒|郵便|住所|所在地|(?i:address|zip|postal|post code|postcode)")
_PREFECTURE_AFTER = re.compile(f" ?(?:東京都|北海道|大阪府|京都府|[{KANJI_CLASS}]{{2,3}}県)")
# Offices that follow a title without being names: "Mr. President", "Madam Speaker".
_OFFICES = frozenset(
    "President Chairman Chairwoman Speaker Secretary Mayor Governor Minister Ambassador Commissioner".split()
)


def _cue_near(cue: re.Pattern[str], text: str, start: int, end: int) -> bool:
    return (
        cue.search(text, max(0, start - _CUE_BEFORE), start) is not None
        or cue.search(text, end, end + _CUE_AFTER) is not None
    )


def _my_number_accepted(text: str, start: int, end: int) -> bool:
    return _cue_near(_MY_NUMBER_CUE, text, start, end)


def _card_accepted(text: str, start: int, end: int) -> bool:
    return not text[start:end].isdigit() or _cue_near(_CARD_CUE, text, start, end)


def _phone_accepted(text: str, start: int, end: int) -> bool:
    if text[start] != "+":
        return True
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(text[start:end], None))
    except phonenumbers.NumberParseException:
        return False


def _postal_code_accepted(text: str, start: int, end: int) -> bool:
    return _cue_near(_POSTAL_CUE, text, start, end) or _PREFECTURE_AFTER.match(text, end) is not None


def _name_accepted(text: str, start: int, end: int) -> bool:
    return text[start:end] not in _OFFICES and not text.endswith("My Name Is ", 0, start)


ACCEPT: dict[str, Callable[[str, int, int], bool]] = {
    PiiKind.MY_NUMBER: _my_number_accepted,
    PiiKind.CREDIT_CARD: _card_accepted,
    PiiKind.PHONE: _phone_accepted,
    PiiKind.POSTAL_CODE: _postal_code_accepted,
    PiiKind.NAME: _name_accepted,
}


def _result(recognizer: EntityRecognizer, start: int, end: int, score: float) -> RecognizerResult:
    return RecognizerResult(
        entity_type=recognizer.supported_entities[0],
        start=start,
        end=end,
        score=score,
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
        },
    )


class PatternRecognizer(EntityRecognizer):
    """One kind's patterns (`pii_patterns.FINDERS`) and its context check (`ACCEPT`)."""

    def __init__(self, kind: str, language: str) -> None:
        self.kind = kind
        super().__init__(
            supported_entities=[ENTITIES[kind]], name=f"{RECOGNIZER_PREFIX}{kind}", supported_language=language
        )

    def load(self) -> None:
        pass  # fixed patterns, compiled when the module was imported

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list:
        accept = ACCEPT.get(self.kind)
        return [
            _result(self, start, end, PATTERN_SCORE)
            for start, end in FINDERS[self.kind](text)
            if accept is None or accept(text, start, end)
        ]


class GinzaNameRecognizer(EntityRecognizer):
    """Persons in Japanese text, by GiNZA's named-entity model (`pii_ginza`)."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name=f"{RECOGNIZER_PREFIX}ginza_name", supported_language="ja")

    def load(self) -> None:
        pass  # the model comes from the model cache on each call, so it can be released when idle

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list:
        return [_result(self, start, end, MODEL_SCORE) for start, end in pii_ginza.find_names(text)]


@functools.cache
def analyzer() -> AnalyzerEngine:
    """The one analyzer of this process: our recognizers for both languages, GiNZA's for Japanese."""
    registry = RecognizerRegistry(supported_languages=list(LANGUAGES))
    for language in LANGUAGES:
        for kind in PiiKind:
            registry.add_recognizer(PatternRecognizer(kind, language))
    registry.add_recognizer(GinzaNameRecognizer())
    nlp_engine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "none"} for language in LANGUAGES])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=list(LANGUAGES))


def _japanese_kanji(kanji: str) -> bool:
    try:
        kanji.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def language(text: str) -> str:
    if _KANA.search(text):
        return "ja"
    kanji = "".join(_KANJI.findall(text))
    return "ja" if kanji and _japanese_kanji(kanji) else "en"


def analyze(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of everything the recognizers find in ``text``; may overlap."""
    folded = normalise(text)
    results = analyzer().analyze(folded, language=language(folded), entities=list(ENTITIES.values()))
    return [(KINDS[r.entity_type], r.start, r.end) for r in results]


@functools.cache
def anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()


def anonymize(text: str, findings: list[tuple[str, int, int]], placeholders: dict[str, str]) -> str:
    """``text`` with each (kind, start, end) of ``findings`` (none overlapping) replaced by its
    kind's placeholder."""
    operators = {
        ENTITIES[kind]: OperatorConfig("replace", {"new_value": placeholders[kind]}) for kind, _, _ in findings
    }
    replacements = [Replacement(ENTITIES[kind], start, end, PATTERN_SCORE) for kind, start, end in findings]
    # Two findings of one kind with a space between them stay two placeholders, as counted.
    result = anonymizer().anonymize(
        text=text, analyzer_results=replacements, operators=operators, merge_entities_with_spaces=False
    )
    return result.text
