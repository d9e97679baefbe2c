"""The app's models, one module per feature; imported from here so that migrations,
`app_label` and `from training.models import …` stay as they are."""

from training.models.evaluation import EvalSample, Evaluation
from training.models.judging import Comparison, JudgeJob, Judgment, comparison_key
from training.models.runs import TrainingPoint, TrainingRun

__all__ = [
    "Comparison",
    "EvalSample",
    "Evaluation",
    "JudgeJob",
    "Judgment",
    "TrainingPoint",
    "TrainingRun",
    "comparison_key",
]
