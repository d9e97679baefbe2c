"""ROUGE-L (rouge-score), scaled to 0..100, as a local `evaluate` module.

Loaded by path, so that nothing is fetched from the Hugging Face Hub:
`evaluate.load("training/evaluation/modules/rouge_l", keep_in_memory=True)`. One reference per
prediction.

ROUGE-L compares the longest common subsequence of tokens. The score is the mean over the pairs
of each pair's F-measure (precision and recall are averaged the same way), times 100 so that it
reads like BLEU and chrF. rouge-score's own tokenizer keeps only [a-z0-9] and so drops Japanese,
Chinese and every accented letter; this module's tokenizer lower-cases, makes each Japanese or
Chinese character (kana, Han ideograph) a token of its own, keeps runs of other letters and
digits (any script) as words, and drops punctuation. On ASCII text it gives exactly
rouge-score's tokens (without stemming).

`per_sample=True` adds "per_sample": each pair's F-measure, 0..100.
"""

import re

import datasets
import evaluate
from rouge_score import rouge_scorer

# text.cjk's CJK_CLASS: this module is loaded by path, on its own
# (tests/evaluation/test_cjk_copies.py checks that the two stay the same).
CJK_CLASS = (
    r"\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u3190-\u31ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\uffa0-\uffdc\U00020000-\U0003134f"
)
# One CJK character, or a run of letters and digits that are not CJK (no underscore, no punctuation).
TOKEN = re.compile(rf"[{CJK_CLASS}]|(?:(?![{CJK_CLASS}])[^\W_])+")

_DESCRIPTION = "ROUGE-L F-measure (rouge-score), 0..100, with character tokens for Japanese and Chinese."
_CITATION = """\
@inproceedings{lin-2004-rouge,
  title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
  author = "Lin, Chin-Yew",
  booktitle = "Text Summarization Branches Out",
  year = "2004",
  pages = "74--81",
}
"""
_INPUTS = """
Args:
    predictions: list of generated texts.
    references: list of reference texts, one per prediction.
    per_sample: also return each pair's F-measure under "per_sample".
Returns:
    score: mean ROUGE-L F-measure, 0..100; precision; recall (means, 0..100).
"""


def tokenize(text):
    """Lower-cased tokens: each Japanese or Chinese character alone, other words whole."""
    return TOKEN.findall((text or "").lower())


class CjkTokenizer:
    """A rouge-score tokenizer (anything with `tokenize(text)`) built on `tokenize`."""

    def tokenize(self, text):
        return tokenize(text)


class RougeL(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, per_sample=False):
        scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=CjkTokenizer())
        scores = [
            scorer.score(reference or "", prediction or "")["rougeL"]
            for prediction, reference in zip(predictions, references, strict=True)
        ]
        count = len(scores)
        result = {
            "score": 100 * sum(score.fmeasure for score in scores) / count if count else None,
            "precision": 100 * sum(score.precision for score in scores) / count if count else None,
            "recall": 100 * sum(score.recall for score in scores) / count if count else None,
        }
        if per_sample:
            result["per_sample"] = [100 * score.fmeasure for score in scores]
        return result
