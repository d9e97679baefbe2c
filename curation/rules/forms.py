"""The rule editor's form: the rule's own fields and one set of parameters per kind.

Every kind's parameters are fields of the one form (named ``<kind>_<param>``), so the page
works without JavaScript; only the chosen kind's are read. The form collects what was
typed; ``curation.rules.services.rule_clean`` checks it and names the field when it is wrong.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from curation.connections.services import backend_choices, choice_from_spec, spec_from_choice
from curation.models import LabelingRule, Project
from curation.rules import spec as S

# kind → its parameters, in the order the editor shows them
PARAMS: dict[str, tuple[str, ...]] = {
    S.KEYWORDS: ("keywords", "mode", "whole_word", "case_sensitive", "fold_width"),
    S.REGEX: ("pattern", "case_sensitive", "fold_width"),
    S.LENGTH: ("unit", "min", "max"),
    S.METADATA: ("key", "op", "value", "keywords", "mode", "whole_word", "pattern", "case_sensitive", "fold_width"),
    S.SIMILARITY: ("threshold",),
    S.ZERO_SHOT: ("instruction", "backend"),
    S.COMBINE: ("op", "rules"),
}
KIND_CHOICES = [
    *LabelingRule.Kind.choices,
]
RULE_FIELDS = ("name", "kind", "label", "target", "active")
METADATA_OPS = [
    ("equals", _("equals")),
    ("not_equals", _("does not equal")),
    ("contains", _("contains")),
    ("exists", _("exists")),
    ("missing", _("is missing")),
    ("gt", _("is greater than")),
    ("lt", _("is less than")),
    ("in", _("is one of (comma separated)")),
    ("keywords", _("contains keywords")),
    ("regex", _("matches a regular expression")),
]
WHOLE_WORD_HELP = _(
    "A keyword is not matched inside a longer word. Chinese, Japanese and Korean characters are "
    "each a word of their own, so 返品 is found inside 返品したい, and PS5 inside PS5を買った."
)
FOLD_WIDTH_HELP = _(
    "Compare full-width and half-width forms as one (ＡＢＣ and ABC, １２３ and 123, ｶﾅ and カナ): "
    "the text and the pattern's characters are NFKC-normalised."
)


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES, initial=S.KEYWORDS)
    label = forms.ChoiceField(label=_("Votes for"), choices=())
    target = forms.ChoiceField(label=_("Reads"), choices=LabelingRule.Target.choices, initial=S.USER)
    active = forms.BooleanField(
        label=_("Active"), required=False, initial=True, help_text=_("Only active rules are applied.")
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    keywords_keywords = forms.CharField(
        label=_("Keywords"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One keyword or phrase per line, or separated by commas."),
    )
    keywords_mode = forms.ChoiceField(
        label=_("Match"),
        choices=[("any", _("any of them")), ("all", _("all of them"))],
        initial="any",
        required=False,
    )
    keywords_whole_word = forms.BooleanField(
        label=_("Whole words only"), required=False, initial=True, help_text=WHOLE_WORD_HELP
    )
    keywords_case_sensitive = forms.BooleanField(label=_("Case sensitive"), required=False)
    keywords_fold_width = forms.BooleanField(
        label=_("Fold width"), required=False, initial=True, help_text=FOLD_WIDTH_HELP
    )

    regex_pattern = forms.CharField(
        label=_("Pattern"),
        required=False,
        max_length=S.MAX_PATTERN_LENGTH,
        help_text=_(
            "Python re syntax and meaning (\\d, \\w, \\b and \\s know every script); "
            "no look-around and no back-references."
        ),
    )
    regex_case_sensitive = forms.BooleanField(label=_("Case sensitive"), required=False)
    regex_fold_width = forms.BooleanField(
        label=_("Fold width"), required=False, initial=True, help_text=FOLD_WIDTH_HELP
    )

    length_unit = forms.ChoiceField(
        label=_("Count"), choices=[("words", _("words")), ("chars", _("characters"))], initial="words", required=False
    )
    length_min = forms.IntegerField(label=_("At least"), min_value=0, required=False)
    length_max = forms.IntegerField(label=_("At most"), min_value=0, required=False)

    metadata_key = forms.CharField(label=_("Metadata field"), required=False, max_length=64)
    metadata_op = forms.ChoiceField(label=_("Test"), choices=METADATA_OPS, initial="equals", required=False)
    metadata_value = forms.CharField(label=_("Value"), required=False)
    metadata_keywords = forms.CharField(
        label=_("Keywords"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_('For "contains keywords": one per line, or separated by commas.'),
    )
    metadata_mode = forms.ChoiceField(
        label=_("Match"),
        choices=[("any", _("any of them")), ("all", _("all of them"))],
        initial="any",
        required=False,
    )
    metadata_whole_word = forms.BooleanField(
        label=_("Whole words only"), required=False, initial=True, help_text=WHOLE_WORD_HELP
    )
    metadata_pattern = forms.CharField(
        label=_("Pattern"),
        required=False,
        max_length=S.MAX_PATTERN_LENGTH,
        help_text=_('For "matches a regular expression": Python re syntax, searched in the field\'s text.'),
    )
    metadata_case_sensitive = forms.BooleanField(label=_("Case sensitive"), required=False)
    metadata_fold_width = forms.BooleanField(
        label=_("Fold width"), required=False, initial=True, help_text=FOLD_WIDTH_HELP
    )

    similarity_threshold = forms.FloatField(
        label=_("Similarity at least"),
        min_value=0.0,
        max_value=1.0,
        initial=0.8,
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text=_("Cosine similarity to an example people gave this label (0 to 1)."),
    )

    llm_instruction = forms.CharField(
        label=_("Instruction to the model"),
        required=False,
        max_length=S.MAX_INSTRUCTION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional: what the labels mean, beyond their descriptions."),
    )
    llm_backend = forms.ChoiceField(
        label=_("Model"),
        required=False,
        help_text=_(
            "A connection an admin set up for this project (or for every project), or the model tuned by one of "
            "this project's finished training runs. The preview says how long it takes per example."
        ),
    )

    combine_op = forms.ChoiceField(
        label=_("Holds when"),
        choices=[
            ("and", _("all of the rules vote (and)")),
            ("or", _("any of the rules votes (or)")),
            ("not", _("the rule does not vote (not)")),
        ],
        initial="and",
        required=False,
    )
    combine_rules = forms.MultipleChoiceField(
        label=_("Rules"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_('The rule votes for its own label where the combination holds; "not" takes one rule.'),
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(project.labels.order_by("name").values_list("name", flat=True))
        self.fields["label"].choices = [(name, name) for name in names]
        if names and "label" not in self.initial:
            self.initial["label"] = names[0]
        rules = project.rules.order_by("name").values_list("id", "name")
        self.fields["combine_rules"].choices = [(str(pk), name) for pk, name in rules]
        # Rules saved before they could choose a model keep the embedded one.
        choices = [("", _("Embedded model (default)")), *backend_choices(project)]
        saved = self.initial.get("llm_backend")
        if saved and saved not in dict(choices):
            # Kept as it is, so saving says the model is gone instead of switching models silently.
            choices.append((saved, _("A connection that was deleted: choose another")))
        self.fields["llm_backend"].choices = choices

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # A stray value in another kind's fieldset (all are on the page) must not block this kind.
        kind = cleaned.get("kind")
        for name in list(self.errors):
            if kind_of(name) not in (None, kind):
                del self.errors[name]
        return cleaned

    @staticmethod
    def initial_for(rule: LabelingRule) -> dict[str, Any]:
        """The form's values for a saved rule."""
        initial: dict[str, Any] = {
            "name": rule.name,
            "kind": rule.kind,
            "label": rule.label.name,
            "target": rule.target,
            "active": rule.active,
            "version": rule.version,
        }
        for param in PARAMS.get(rule.kind, ()):
            value = rule.params.get(param)
            if rule.kind == S.COMBINE and param == "rules":
                value = [str(v) for v in value or ()]
            elif rule.kind == S.ZERO_SHOT and param == "backend":
                value = choice_from_spec(value)
            elif isinstance(value, list):
                value = ("\n" if param == "keywords" else ", ").join(str(v) for v in value)
            initial[f"{rule.kind}_{param}"] = value
        return initial

    def chosen_kind(self) -> str:
        return self.cleaned_data.get("kind") or S.KEYWORDS

    def rule_fields(self) -> dict[str, Any]:
        """What the services take: the rule's fields and the chosen kind's parameters (a
        parameter left empty is left out, so the service's default applies)."""
        kind = self.chosen_kind()
        params = {param: self.cleaned_data.get(f"{kind}_{param}") for param in PARAMS[kind]}
        params = {param: value for param, value in params.items() if value is not None}
        if kind == S.ZERO_SHOT:
            params["backend"] = spec_from_choice(params.get("backend") or "")
        fields: dict[str, Any] = {name: self.cleaned_data.get(name) for name in RULE_FIELDS}
        fields["params"] = params
        return fields

    def field_for(self, error_field: str) -> str | None:
        """The form field a ``RuleError`` names (its parameters belong to the chosen kind)."""
        if error_field in RULE_FIELDS:
            return error_field
        name = f"{self.chosen_kind()}_{error_field}"
        return name if name in self.fields else None

    def fieldsets(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """(kind, its name, its parameter fields) for every kind, for the editor."""
        return [(kind, str(label), [self[f"{kind}_{param}"] for param in PARAMS[kind]]) for kind, label in KIND_CHOICES]


def kind_of(field_name: str) -> str | None:
    """The kind a parameter field belongs to; None for the rule's own fields."""
    kind = field_name.split("_", 1)[0]
    return kind if kind in PARAMS and field_name not in RULE_FIELDS else None
