"""The previous personal data detector, kept only so that bench/pii.py can measure the Presidio
detector (`pii`) against it in one run; nothing in the product uses it.

It is the detector as it was before Presidio: the patterns of `pii_patterns` and the name cues
of `pii_names`, run bare over the width-folded text, with no context checks and no GiNZA, and
overlaps resolved as `pii` resolves them. Delete it together with the comparison in the bench.
"""

from __future__ import annotations

from curation.quality.pii import Finding
from curation.quality.pii_patterns import FINDERS, normalise, resolve


def detect(text: str) -> list[Finding]:
    """Every kind of personal data in ``text``, as the previous detector found it."""
    if not text:
        return []
    folded = normalise(text)
    candidates = [(kind, start, end) for kind, finder in FINDERS.items() for start, end in finder(folded)]
    return [
        Finding(kind=str(kind), start=start, end=end, text=text[start:end]) for kind, start, end in resolve(candidates)
    ]
