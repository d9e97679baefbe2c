from django import forms
from django.utils.translation import gettext_lazy as _


class SplitForm(forms.Form):
    method = forms.ChoiceField(
        label=_("Method"),
        choices=[
            ("random", _("Random")),
            ("stratified", _("Stratified by label (each split keeps the label mix)")),
            ("group", _("Grouped by a metadata field (one customer or document never straddles splits)")),
            ("chronological", _("Chronological (the newest examples are the test set)")),
        ],
    )
    train = forms.FloatField(label=_("Train"), min_value=0, max_value=1, initial=0.8)
    validation = forms.FloatField(label=_("Validation"), min_value=0, max_value=1, initial=0.1)
    test = forms.FloatField(label=_("Test"), min_value=0, max_value=1, initial=0.1)
    seed = forms.IntegerField(label=_("Seed"), initial=42, help_text=_("The same seed gives the same splits."))
    group_key = forms.CharField(label=_("Metadata field to group by"), required=False, max_length=64)
    only_unassigned = forms.BooleanField(
        label=_("Only examples without a split"), required=False, help_text=_("Leave assigned examples where they are.")
    )

    def split_request(self):
        from curation.splits.services import SplitRequest
        from curation.splits.splitting import Ratios

        d = self.cleaned_data
        try:
            ratios = Ratios(d["train"], d["validation"], d["test"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return SplitRequest(d["method"], ratios, d["seed"], d["group_key"].strip(), d["only_unassigned"])


class BalanceForm(forms.Form):
    strategy = forms.ChoiceField(
        label=_("For training"),
        choices=[
            ("none", _("Use the data as it is")),
            ("oversample", _("Oversample minority labels")),
            ("undersample", _("Undersample majority labels")),
            ("class_weights", _("Weight the loss by class")),
        ],
    )
