"""Zero-shot labelling by a language model, for weak-supervision rules.

The model reads a text and the project's labels and answers with one label name, or `none`
to abstain. Small models answer loosely ("Label: **Billing**."), so the parser accepts any
answer that names exactly one label as a whole word, and abstains on everything else.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from llm.interface import GenerationBackend, GenerationError
from text.cjk import CJK_CLASS

MAX_TEXT_CHARS = 2000
ABSTAIN_WORDS = ("none", "unknown", "abstain", "n/a", "no label")

# The prompts stay in English whatever the interface language: they talk to the model, not to
# a person, and small models follow English instructions best. Texts and labels may be in any
# language.
SYSTEM_PROMPT = (
    "You are a careful annotator. You read a text and choose the one label from a given list "
    "that fits it best. If no label fits, you answer none. You answer with the label name "
    "only, without explanation."
)

# Letters, digits and underscores outside text.cjk's set (each CJK character is a word of its
# own), so that "返品です" still names the label "返品".
_SPACED_WORD_CHAR = rf"[^\W{CJK_CLASS}]"


def build_conversation(text: str, labels: list[tuple[str, str]], instruction: str = "") -> list[dict[str, str]]:
    """The chat messages asking which of `labels` ((name, description) pairs) fits `text`."""
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + " […]"
    lines = [f"- {name}: {description}" if description else f"- {name}" for name, description in labels]
    parts = []
    if instruction.strip():
        parts.append(instruction.strip())
    parts += [
        "Labels:\n" + "\n".join(lines),
        f"Text:\n<<<\n{text}\n>>>",
        "Which label fits the text? Answer with exactly one label name from the list, or none if no label fits.",
    ]
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def _pattern(words: list[str]) -> re.Pattern[str]:
    # Longest first, so that "shipping" is read as one word and never as "ship" plus "ping".
    alternatives = "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<!{_SPACED_WORD_CHAR})(?:{alternatives})(?!{_SPACED_WORD_CHAR})", re.IGNORECASE)


def _name_of(matched: str, by_folded: dict[str, str]) -> str:
    if matched.casefold() in by_folded:
        return by_folded[matched.casefold()]
    # The regex folds case a little differently from str.casefold for a few letters.
    return next(name for name in by_folded.values() if re.fullmatch(re.escape(name), matched, re.IGNORECASE))


def parse_answer(output: str, label_names: list[str]) -> str | None:
    """The one label `output` names, or None when it abstains, names none or names several."""
    names = [name for name in label_names if name.strip()]
    if not names:
        return None
    by_folded = {name.casefold(): name for name in names}
    labels = _pattern(names)
    # A label that happens to be called "none" or "unknown" is a label, not an abstention.
    abstain_words = [word for word in ABSTAIN_WORDS if word not in by_folded]
    abstain = _pattern(abstain_words) if abstain_words else None
    # The first line that says something decides: small models add explanations after the
    # answer, and those tend to mention the other labels.
    for line in output.splitlines():
        found = {_name_of(match.group(0), by_folded) for match in labels.finditer(line)}
        if abstain is not None and (match := abstain.search(line)) is not None:
            first_label = labels.search(line)
            if first_label is None or match.start() < first_label.start():
                return None
        if len(found) == 1:
            return found.pop()
        if found:
            return None
    return None


def classify(
    texts: list[str],
    labels: list[tuple[str, str]],
    *,
    backend: GenerationBackend,
    instruction: str = "",
    max_new_tokens: int = 8,
) -> list[str | None]:
    """The label the model chooses for each text, or None where it abstains, in order."""
    if not texts:
        return []
    if not labels:
        raise ValueError(_("Zero-shot classification needs at least one label; this project has none."))
    conversations = [build_conversation(text, labels, instruction) for text in texts]
    outputs = backend.generate(conversations, max_new_tokens=max_new_tokens, temperature=0.0)
    if len(outputs) != len(texts):
        raise GenerationError(
            _("The backend %(backend)s answered %(answers)d of %(texts)d texts; it must answer each one.")
            % {"backend": backend.name, "answers": len(outputs), "texts": len(texts)}
        )
    names = [name for name, _description in labels]
    return [parse_answer(output, names) for output in outputs]
