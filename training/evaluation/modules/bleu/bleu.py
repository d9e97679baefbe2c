"""Corpus BLEU (sacrebleu), 0..100, as a local `evaluate` module.

Loaded by path, so that nothing is fetched from the Hugging Face Hub:
`evaluate.load("training/evaluation/modules/bleu", keep_in_memory=True)`. One reference per
prediction.

Tokenisation: `tokenize="auto"` (the default) chooses from the references alone, so that the
answers of one system cannot put it on another scale than the next: sacrebleu's "char" tokenizer
when at least half of the non-blank references hold Japanese or Chinese characters (kana or Han
ideographs), since those languages write no spaces between words and "13a" would see a whole
sentence as one word; else "13a", the WMT standard. "ja-mecab" would split Japanese into words,
but needs MeCab, which is not installed. Any tokenizer name sacrebleu knows can be passed instead
(Shikomi's evaluations choose once and pass the name for every system and every sample).

Effective order: n-gram orders that no prediction is long enough to have are left out of the
geometric mean (sacrebleu's `effective_order=True`). For a corpus that has a 4-gram anywhere this
is exactly standard corpus BLEU; without it, a corpus of answers shorter than four tokens would
score 0 even when every answer equals its reference.

`per_sample=True` adds "per_sample": sentence BLEU of each pair (effective order, exponential
smoothing, the same tokenizer as the corpus score).
"""

import re

import datasets
import evaluate
from sacrebleu.metrics import BLEU

# text.cjk's UNSPACED_CLASS (Chinese and Japanese letters): this module is loaded by path, on its own
# (tests/evaluation/test_cjk_copies.py checks that the two stay the same).
UNSPACED_CLASS = (
    r"\u2e80-\u2fdf\u3005-\u3007\u3040-\u30ff\u3100-\u312f\u3190-\u31ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
CJK = re.compile(f"[{UNSPACED_CLASS}]")

_DESCRIPTION = "Corpus BLEU computed with sacrebleu, 0..100; character tokens for Japanese and Chinese."
_CITATION = """\
@inproceedings{post-2018-call,
  title = "A Call for Clarity in Reporting {BLEU} Scores",
  author = "Post, Matt",
  booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
  year = "2018",
  pages = "186--191",
}
"""
_INPUTS = """
Args:
    predictions: list of generated texts.
    references: list of reference texts, one per prediction.
    tokenize: "auto" (default: "char" when at least half of the references hold Japanese or
        Chinese, else "13a"), or a sacrebleu tokenizer name.
    per_sample: also return sentence BLEU for each pair under "per_sample".
Returns:
    score: corpus BLEU, 0..100; tokenize: the tokenizer used; precisions: n-gram precisions;
    brevity_penalty; length_ratio; prediction_length; reference_length.
"""


def choose_tokenizer(references):
    """The sacrebleu tokenizer for these references: char when at least half of the non-blank ones
    hold Japanese or Chinese characters, else 13a (training/evaluation/metrics.py's choose_tokenize)."""
    texts = [text for text in references if text and text.strip()]
    cjk = sum(1 for text in texts if CJK.search(text))
    return "char" if texts and 2 * cjk >= len(texts) else "13a"


class Bleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references, tokenize="auto", per_sample=False):
        predictions = [text or "" for text in predictions]
        references = [text or "" for text in references]
        if tokenize == "auto":
            tokenize = choose_tokenizer(references)
        bleu = BLEU(tokenize=tokenize, effective_order=True)
        corpus = bleu.corpus_score(predictions, [references])
        result = {
            "score": corpus.score,
            "tokenize": tokenize,
            "precisions": list(corpus.precisions),
            "brevity_penalty": corpus.bp,
            "length_ratio": corpus.ratio,
            "prediction_length": corpus.sys_len,
            "reference_length": corpus.ref_len,
        }
        if per_sample:
            result["per_sample"] = [
                bleu.sentence_score(prediction, [reference]).score
                for prediction, reference in zip(predictions, references, strict=True)
            ]
        return result
