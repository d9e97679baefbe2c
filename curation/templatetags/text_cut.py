"""Text cut to fit a list: on a whole character, with a visible "cut off" mark.

`{{ text|clip:140 }}` keeps at most 140 characters. The cut never splits what a reader sees as
one character (a letter and its combining accent or voicing mark, an emoji with its skin tone or
joined parts, a flag), drops a half-decoded character ("\\ufffd") left at the end, and ends in
"…" and a small "cut off" mark that says how long the whole text is, so a cut text never passes
for the whole. `{{ example.messages|answer_text }}` is the answer: the last assistant turn.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()

ZWJ = "\u200d"
REPLACEMENT_CHARACTER = "\ufffd"


def _belongs_to_previous(character: str) -> bool:
    """A character drawn as part of the one before it: combining marks (accents, the Japanese
    voicing marks ゙ ゚), variation selectors, emoji skin tones and tags, the zero-width joiner."""
    point = ord(character)
    return (
        unicodedata.category(character) in ("Mn", "Mc", "Me")
        or character == ZWJ
        or 0xFE00 <= point <= 0xFE0F
        or 0xE0100 <= point <= 0xE01EF
        or 0x1F3FB <= point <= 0x1F3FF
        or 0xE0020 <= point <= 0xE007F
    )


def _regional_indicator(character: str) -> bool:
    return 0x1F1E6 <= ord(character) <= 0x1F1FF


def clip_text(text: str, limit: int) -> tuple[str, bool]:
    """(the text cut to at most `limit` characters on a whole character, whether it was cut)."""
    if len(text) <= limit:
        return text, False
    end = max(limit, 0)
    # Back off while the cut would part a character from its marks or joined parts.
    while end > 0 and (_belongs_to_previous(text[end]) or text[end - 1] == ZWJ):
        end -= 1
    # A flag is a pair of regional indicators: an odd run before the cut would split one.
    if end > 0 and _regional_indicator(text[end]):
        run = 0
        while run < end and _regional_indicator(text[end - 1 - run]):
            run += 1
        end -= run % 2
    return text[:end].rstrip().rstrip(REPLACEMENT_CHARACTER).rstrip(), True


@register.filter(name="clip")
def clip(text: Any, limit: Any = 140) -> SafeString:
    """The text, escaped, cut to `limit` characters with the "cut off" mark when it is longer."""
    text = "" if text is None else str(text)
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        limit = 140
    kept, cut = clip_text(text, limit)
    if not cut:
        return conditional_escape(text)
    whole = ngettext("Cut off: %(n)d character in all", "Cut off: %(n)d characters in all", len(text)) % {
        "n": len(text)
    }
    return format_html('{}… <small class="muted cut-off" title="{}">{}</small>', kept, whole, _("(cut off)"))


@register.filter(name="answer_text")
def answer_text(messages: Any) -> str:
    """The answer of a conversation: the last assistant turn's text, or the functions it calls
    when it has no text; "" when no turn is the assistant's."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            return content
        calls = [
            str((call.get("function") or {}).get("name") or "")
            for call in message.get("tool_calls") or []
            if isinstance(call, dict)
        ]
        return ", ".join(f"{name}(…)" for name in calls if name)
    return ""
