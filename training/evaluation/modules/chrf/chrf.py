"""Corpus chrF (sacrebleu), 0..100, as a local `evaluate` module.

Loaded by path, so that nothing is fetched from the Hugging Face Hub:
`evaluate.load("training/evaluation/modules/chrf", keep_in_memory=True)`. One reference per
prediction.

chrF is the F-score (beta 2: recall weighs twice as much as precision) of character n-grams up
to 6, spaces removed, so it needs no word tokenizer and works for Japanese and Chinese as it is.
`word_order=2` gives chrF++ (word unigrams and bigrams as well).

`per_sample=True` adds "per_sample": sentence chrF of each pair.
"""

import datasets
import evaluate
from sacrebleu.metrics import CHRF

_DESCRIPTION = "Corpus chrF computed with sacrebleu, 0..100."
_CITATION = """\
@inproceedings{popovic-2015-chrf,
  title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
  author = "Popovi{\'c}, Maja",
  booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
  year = "2015",
  pages = "392--395",
}
"""
_INPUTS = """
Args:
    predictions: list of generated texts.
    references: list of reference texts, one per prediction.
    word_order: 0 for chrF (default), 2 for chrF++.
    per_sample: also return sentence chrF for each pair under "per_sample".
Returns:
    score: corpus chrF, 0..100; char_order; word_order; beta.
"""


class Chrf(evaluate.Metric):
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

    def _compute(self, predictions, references, word_order=0, per_sample=False):
        predictions = [text or "" for text in predictions]
        references = [text or "" for text in references]
        chrf = CHRF(word_order=word_order)
        corpus = chrf.corpus_score(predictions, [references])
        result = {
            "score": corpus.score,
            "char_order": chrf.char_order,
            "word_order": chrf.word_order,
            "beta": chrf.beta,
        }
        if per_sample:
            result["per_sample"] = [
                chrf.sentence_score(prediction, [reference]).score
                for prediction, reference in zip(predictions, references, strict=True)
            ]
        return result
