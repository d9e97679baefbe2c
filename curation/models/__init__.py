"""The app's models, one module per feature; imported from here so that migrations,
`app_label` and `from curation.models import …` stay as they are."""

from curation.models.connections import Connection
from curation.models.core import (
    BackgroundWork,
    Example,
    ExampleRevision,
    Label,
    Membership,
    Project,
    ProjectChange,
    Role,
    UserSettings,
    Work,
)
from curation.models.generation import Draft, GenerationJob, PreferencePair, PromptTemplate
from curation.models.io import ImportJob
from curation.models.labeling import Annotation
from curation.models.quality import DuplicateCluster, DuplicatePair, ExampleCheck, FindingDismissal, QualityScan
from curation.models.rule_texts import RuleText
from curation.models.rules import LabelingRule, RuleRevision, RuleRun, WeakLabel
from curation.models.sources import Source, SourceDocument

__all__ = [
    "Annotation",
    "BackgroundWork",
    "Connection",
    "Draft",
    "DuplicateCluster",
    "DuplicatePair",
    "Example",
    "ExampleCheck",
    "ExampleRevision",
    "FindingDismissal",
    "GenerationJob",
    "ImportJob",
    "Label",
    "LabelingRule",
    "Membership",
    "PreferencePair",
    "Project",
    "ProjectChange",
    "PromptTemplate",
    "QualityScan",
    "Role",
    "RuleRevision",
    "RuleText",
    "RuleRun",
    "Source",
    "SourceDocument",
    "UserSettings",
    "WeakLabel",
    "Work",
]
