from django import forms
from django.utils.translation import gettext_lazy as _

from curation.models import Example

IMPORT_FORMATS = [
    ("openai", _("OpenAI chat JSONL (messages)")),
    ("alpaca", _("Alpaca JSON / JSONL (instruction, input, output)")),
    ("sharegpt", _("ShareGPT JSON (conversations)")),
    ("prompt_completion", _("Prompt / completion JSONL")),
    ("csv", _("CSV with a column mapping")),
    ("tsv", _("TSV with a column mapping")),
    ("hf", _("Hugging Face dataset (Parquet, or a zipped save_to_disk folder)")),
    ("preference", _("Preference pairs (TRL prompt/chosen/rejected, LLaMA-Factory ranking)")),
]


EXPORT_FORMATS = [
    ("openai", _("OpenAI chat JSONL")),
    ("alpaca", _("Alpaca JSON")),
    ("sharegpt", _("ShareGPT JSON")),
    ("csv", _("CSV (text and label for classification; instruction and output for chat)")),
    ("tsv", _("TSV (as CSV, tab-separated)")),
    ("prompt_completion", _("Prompt / completion JSONL")),
    ("parquet", _("Hugging Face dataset (Parquet)")),
]


ENCODINGS = [
    ("auto", _("Detect (UTF-8, UTF-8 with BOM, UTF-16, Shift_JIS)")),
    ("utf-8", "UTF-8"),
    ("utf-16", "UTF-16"),
    ("cp932", "Shift_JIS / CP932"),
]


class ImportForm(forms.Form):
    """Every option manage.py import_examples takes. The import service checks them against
    the format (curation/io/options.py): one a format does not take is an error on its field."""

    file = forms.FileField(label=_("File"))
    format = forms.ChoiceField(label=_("Format"), choices=IMPORT_FORMATS)
    encoding = forms.ChoiceField(
        label=_("Encoding"),
        choices=ENCODINGS,
        initial="auto",
        help_text=_("Text files only; a Hugging Face dataset or Parquet file takes none."),
    )
    mapping = forms.CharField(
        label=_("Column mapping"),
        required=False,
        help_text=_(
            "Any format: field=column pairs, for example text=question, label=category; or "
            "instruction=question, output=answer. Join columns into one text field with +, for example "
            "instruction=title+body (joined with a blank line). Fields not named are read from "
            "columns of their own name."
        ),
    )
    delimiter = forms.CharField(
        label=_("Delimiter (CSV/TSV)"),
        required=False,
        strip=False,
        max_length=3,
        help_text=_("One character, such as ; or tab. Empty: , for CSV, tab for TSV."),
    )
    split = forms.ChoiceField(
        label=_("Split"),
        required=False,
        choices=[("", _("As in the file"))] + Example.Split.choices,
        help_text=_("The split of rows that name none."),
    )
    skip_bad_rows = forms.BooleanField(
        label=_("Skip bad rows"),
        required=False,
        help_text=_(
            "Import the good rows and record which were skipped. Off: a file with any bad row imports nothing."
        ),
    )

    def clean_mapping(self) -> str:
        return self.cleaned_data["mapping"].strip()

    def import_options(self) -> dict:
        """The options as the service takes them; an empty one is not chosen."""
        names = ("encoding", "mapping", "delimiter", "split", "skip_bad_rows")
        return {name: self.cleaned_data[name] for name in names}


class ExportForm(forms.Form):
    format = forms.ChoiceField(label=_("Format"), choices=EXPORT_FORMATS)
    split = forms.ChoiceField(label=_("Split"), required=False, choices=[("", _("Any"))] + Example.Split.choices)
    status = forms.MultipleChoiceField(
        label=_("Status"),
        required=False,
        choices=Example.Status.choices,
        initial=[Example.Status.APPROVED],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "export-status"}),
        help_text=_(
            "Approved examples only, unless you tick more: examples that need review have not been checked by a "
            "reviewer, and rejected ones were turned down."
        ),
    )
    source = forms.ChoiceField(label=_("Source"), required=False, choices=[("", _("Any"))] + Example.Source.choices)
    label = forms.ChoiceField(label=_("Label"), required=False)
    raw_formulas = forms.BooleanField(
        label=_("Keep formulas raw"),
        required=False,
        help_text=_(
            "CSV and TSV: a cell that starts with = + - or @ is written with a ' in front, so a "
            "spreadsheet shows it as text instead of running it (importing the file removes the '). "
            "Tick this for a program that reads the file, never for a file someone opens in a spreadsheet."
        ),
    )

    shikomi_fields = forms.BooleanField(
        label=_("With Shikomi fields"),
        required=False,
        help_text=_(
            "Add each example's id, label, split, status and metadata to its record, so that importing "
            "the file gives back the same examples, and where its label came from (label_source: a person, "
            "or the rule set version, model and confidence of an accepted rule label). An import takes "
            "labels as a person's and ignores label_source."
        ),
    )

    per_split = forms.BooleanField(
        label=_("One file per split"),
        required=False,
        help_text=_(
            "A ZIP archive with a file for each split (train, validation, test, unassigned) that has examples."
        ),
    )

    card = forms.BooleanField(
        label=_("Include a data card (README.md)"),
        required=False,
        help_text=_(
            "A ZIP archive with the data and a README.md in the Hugging Face dataset card format: counts by "
            "split, label, origin and status, text lengths, the latest quality check, sources and licences, "
            "the review and the guidelines."
        ),
    )

    def __init__(self, *args, label_names: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", _("Any"))] + [(n, n) for n in label_names]

    def clean_status(self) -> list[str]:
        """The statuses ticked; approved when the request names none (an address written
        before statuses were ticked); an error when the form's boxes were all unticked."""
        value = self.cleaned_data["status"]
        if not value and self.data.get("statuses_shown"):
            raise forms.ValidationError(_("Tick at least one status."))
        return value or [Example.Status.APPROVED]

    def export_options(self) -> dict:
        """The options as example_export and export_preview take them."""
        data = self.cleaned_data
        return {
            "format": data["format"],
            "split": data["split"] or None,
            "status": data["status"],
            "source": data["source"] or None,
            "label": data["label"] or None,
            "formulas": "raw" if data["raw_formulas"] else "escaped",
            "shikomi_fields": data["shikomi_fields"],
        }


class HubForm(forms.Form):
    """Where an admin pushes the export chosen on the export page (its fields come with this
    form's): the repository, whether a new one is private, and the secret holding the token,
    one of the operator's (checked again by the push)."""

    repo_id = forms.CharField(
        label=_("Repository"),
        max_length=200,
        help_text=_("owner/name of a dataset repository; it is created when it does not exist."),
    )
    private = forms.BooleanField(
        label=_("Private"),
        required=False,
        initial=True,
        help_text=_("For a new repository; one that exists keeps its visibility."),
    )
    secret = forms.ChoiceField(
        label=_("Token"),
        help_text=_("The operator's secret that holds a Hugging Face token with write access."),
    )

    def __init__(self, *args, secrets: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["secret"].choices = [(name, name) for name in secrets]
