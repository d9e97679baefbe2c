"""The weak-supervision API: labeling rules, their runs, and the weak labels they give.

Only project admins work with rules (Action.MANAGE_RULES), reading included. Everything
is written by curation/rules/services.py; a RuleError it raises becomes a 400 naming the
field, in the same shape as the rest of the API ({field: [message]}).
"""

from __future__ import annotations

from typing import Any

from django.db.models import JSONField, OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.models import LabelingRule, Project, RuleRevision, RuleRun
from curation.rules import accepting, choosing, services, tasks
from curation.rules import serializers as s
from curation.rules.spec import RuleError
from llm.interface import GenerationError


def rules_of(project: Project) -> QuerySet[LabelingRule]:
    """The project's rules with the stats of their current version, in one query."""
    current = RuleRevision.objects.filter(rule=OuterRef("pk"), version=OuterRef("version")).values("stats")[:1]
    return (
        project.rules.select_related("label", "created_by", "updated_by")
        .annotate(current_stats=Subquery(current, output_field=JSONField()))
        .order_by("id")
    )


def _sample_item(item: dict[str, Any]) -> dict[str, Any]:
    """The service's highlighted parts as the text and [start, end) offsets of the matches."""
    pieces: list[str] = []
    matches: list[list[int]] = []
    cursor = 0
    for piece, matched in item["parts"]:
        if matched:
            matches.append([cursor, cursor + len(piece)])
        pieces.append(piece)
        cursor += len(piece)
    return {"id": item["id"], "gold": item["gold"], "text": "".join(pieces), "matches": matches}


class RulesAPIView(ProjectAPIView):
    project_action = Action.MANAGE_RULES

    def get_rule(self, rule_id: int) -> LabelingRule:
        """A rule of this project, or 404: an id from another project is never found."""
        return get_object_or_404(rules_of(self.project), pk=rule_id)

    def get_run(self, run_id: int) -> RuleRun:
        return get_object_or_404(
            RuleRun.objects.select_related("project", "created_by"), pk=run_id, project=self.project
        )

    def rule_data(self, rule: LabelingRule) -> dict[str, Any]:
        """The rule as the API shows it, read again with its current stats."""
        return s.RuleSerializer(rules_of(self.project).get(pk=rule.pk)).data

    def current_data(self, current: LabelingRule) -> dict[str, Any]:
        """A stale rule's current version, for the 409."""
        return self.rule_data(current)


class RuleList(RulesAPIView):
    @extend_schema(responses=s.RuleSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        return Response(s.RuleSerializer(rules_of(self.project), many=True).data)

    @extend_schema(
        request=s.RuleInputSerializer,
        responses={201: s.RuleSerializer},
        description="Create a rule. A wrong parameter is a 400 naming it (for example `pattern`).",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.RuleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.rule_create(project=self.project, user=request.user, **data.validated_data)
        return Response(self.rule_data(rule), status=status.HTTP_201_CREATED)


class RulePreview(RulesAPIView):
    @extend_schema(
        request=s.RulePreviewInputSerializer,
        responses=s.RulePreviewSerializer,
        description="How a rule as typed does on the project, with a sample of its hits; nothing is saved. "
        "Rules that run a model read only the first examples (`limited`); an LLM rule's `model` says how many "
        "it asked the model about, how long that took and about how long a run over every example would take.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.RulePreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.rule_clean(project=self.project, require_name=False, **data.validated_data)
        try:
            preview = services.rule_preview(project=self.project, rule=rule)
        except GenerationError as error:  # the model is down or refused: say so on the field that chose it
            raise RuleError("backend", str(error)) from None
        body = {
            **preview.stats(),
            "total": preview.total,
            "limited": preview.limited,
            "sample": [_sample_item(item) for item in preview.sample],
            "model": preview.cost(),
        }
        return Response(s.RulePreviewSerializer(body).data)


class RuleDetail(RulesAPIView):
    @extend_schema(responses=s.RuleSerializer)
    def get(self, request: Request, slug: str, rule_id: int) -> Response:
        return Response(s.RuleSerializer(self.get_rule(rule_id)).data)

    @extend_schema(
        request=s.RuleUpdateSerializer,
        responses={200: s.RuleSerializer, 409: s.RuleConflictSerializer},
        description="Send the version you read and the fields to change; each change is a new version. "
        "If someone saved since, the answer is 409 with the current rule under `current`.",
    )
    def patch(self, request: Request, slug: str, rule_id: int) -> Response:
        rule = self.get_rule(rule_id)
        data = s.RuleUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        version = changes.pop("version")
        rule = services.rule_update(rule=rule, user=request.user, version=version, **changes)
        return Response(self.rule_data(rule))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, rule_id: int) -> Response:
        services.rule_delete(rule=self.get_rule(rule_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleHistory(RulesAPIView):
    @extend_schema(responses=s.RuleRevisionSerializer(many=True), description="Newest version first.")
    def get(self, request: Request, slug: str, rule_id: int) -> Response:
        rule = self.get_rule(rule_id)
        revisions = rule.revisions.select_related("edited_by").order_by("-version")
        return Response(s.RuleRevisionSerializer(revisions, many=True).data)


class RuleRunList(RulesAPIView, generics.GenericAPIView):
    serializer_class = s.RuleRunSerializer

    @extend_schema(responses=s.RuleRunSerializer(many=True), description="Newest first.")
    def get(self, request: Request, slug: str) -> Response:
        runs = self.project.rule_runs.select_related("created_by").order_by("-number")
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={202: s.RuleRunSerializer},
        description="Apply the active rules to every example as the next rule set version, in the "
        "background. Poll the run until its status is done, failed or interrupted.",
    )
    def post(self, request: Request, slug: str) -> Response:
        run = tasks.rule_run_start(project=self.project, user=request.user)
        run.refresh_from_db()  # the task may already have run (immediate mode)
        return Response(s.RuleRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RuleRunDetail(RulesAPIView):
    @extend_schema(responses=s.RuleRunDetailSerializer)
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        return Response(s.RuleRunDetailSerializer(self.get_run(run_id)).data)


WEAK_LABEL_PARAMS = [
    OpenApiParameter("min_confidence", float, description="Only weak labels with at least this confidence."),
    OpenApiParameter("max_confidence", float, description="Only weak labels with at most this confidence."),
    OpenApiParameter("conflict", bool, description="Only those whose rules disagree (true) or agree (false)."),
    OpenApiParameter(
        "sort", str, enum=["confidence", "-confidence", "example"], description="Least confident first by default."
    ),
]
SORTS = {"confidence": ("confidence", "id"), "-confidence": ("-confidence", "id"), "example": ("example_id",)}


class WeakLabelList(RulesAPIView, generics.GenericAPIView):
    serializer_class = s.WeakLabelSerializer

    @extend_schema(parameters=WEAK_LABEL_PARAMS, responses=s.WeakLabelSerializer(many=True))
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        # A plain dict: DRF reads a missing boolean in a QueryDict as false, not as absent.
        filters = s.WeakLabelFiltersSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        found = run.weak_labels.select_related("label").order_by(*SORTS[f["sort"]])
        if "min_confidence" in f:
            found = found.filter(confidence__gte=f["min_confidence"])
        if "max_confidence" in f:
            found = found.filter(confidence__lte=f["max_confidence"])
        if f["conflict"] is not None:
            found = found.filter(conflict=f["conflict"])
        page = self.paginate_queryset(found)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AcceptQuerySerializer(serializers.Serializer):
    threshold = serializers.FloatField(
        min_value=0, max_value=1, help_text=_("Accept labels with at least this confidence.")
    )
    source = serializers.ChoiceField(
        accepting.SOURCES,
        required=False,
        help_text=_("Whose labels: the label model's or majority vote's. The run's own model by default."),
    )


def _ids_field(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=choosing.MAX_IDS,
        help_text=help_text,
    )


class AcceptPreviewQuerySerializer(AcceptQuerySerializer):
    page = serializers.IntegerField(
        min_value=1, default=1, help_text=_("Which page of 50 examples `preview` lists (past the last: the last).")
    )


class AcceptInputSerializer(AcceptQuerySerializer):
    confirm = serializers.BooleanField(
        default=False, help_text=_("Needed to accept a run older than the newest finished one.")
    )
    only = _ids_field(_("Accept only these examples (ids) of those the threshold selects; at most 10,000."))

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # "except" is a Python keyword: the field is added by name.
        fields["except"] = _ids_field(
            _("Accept every example the threshold selects except these (ids); at most 10,000. Not with only.")
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["choice"] = choosing.choice_clean(only=attrs.pop("only", None), except_=attrs.pop("except", None))
        return attrs


class CurvePointSerializer(serializers.Serializer):
    threshold = serializers.FloatField()
    gold = serializers.IntegerField(help_text=_("Examples people labeled (that the run saw)."))
    covered = serializers.IntegerField(help_text=_("Of them, those the source labels at this confidence."))
    correct = serializers.IntegerField(help_text=_("Of those, labeled as people did."))
    coverage = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    acceptable = serializers.IntegerField(help_text=_("Examples accepting at this threshold would label."))


class VoteSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text=_("The rule's name."))
    label = serializers.CharField(help_text=_("The label it voted for."))


class PreviewRowSerializer(serializers.Serializer):
    example_id = serializers.IntegerField()
    text = serializers.CharField()
    label = serializers.CharField(help_text=_("The proposed label."))
    confidence = serializers.FloatField()
    current = serializers.CharField(allow_null=True, help_text=_("The example's label now (from rules), if any."))
    current_rule_set = serializers.IntegerField(allow_null=True)
    votes = VoteSerializer(many=True, help_text=_("The rules that voted on the example, and for which label."))


class AcceptSummarySerializer(serializers.Serializer):
    source = serializers.CharField()
    threshold = serializers.FloatField()
    acceptable = serializers.IntegerField(help_text=_("Examples accepting would label or relabel."))
    new = serializers.IntegerField(help_text=_("Of them, examples without a label now."))
    relabel = serializers.IntegerField(help_text=_("Of them, labels from rules that would change."))
    from_newer = serializers.IntegerField(help_text=_("Of them, examples labeled from a newer rule set now."))
    newest = serializers.IntegerField(allow_null=True, help_text=_("The newest rule set, when newer than this one."))
    coverage = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    curve = CurvePointSerializer(many=True)
    preview = PreviewRowSerializer(many=True)
    page = serializers.IntegerField(help_text=_("The page of examples `preview` lists."))
    pages = serializers.IntegerField(help_text=_("How many pages of 50 there are."))


class KeptSerializer(serializers.Serializer):
    example_id = serializers.IntegerField()
    text = serializers.CharField()
    label = serializers.CharField(allow_null=True)
    by = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True)


class WithdrawalSerializer(serializers.Serializer):
    withdrawn = serializers.IntegerField(help_text=_("Labels taken off (POST) or that would be (GET)."))
    kept = serializers.IntegerField(help_text=_("Labels from the run a person has set since: kept."))
    kept_examples = KeptSerializer(many=True, help_text=_("The first of them."))


def _summary_data(summary: accepting.AcceptSummary) -> dict[str, Any]:
    point = summary.point
    return {
        "source": summary.source,
        "threshold": summary.threshold,
        **{k: getattr(summary, k) for k in ("acceptable", "new", "relabel", "from_newer", "preview")},
        "newest": summary.newest.number if summary.newest else None,
        "coverage": point.coverage if point else None,
        "accuracy": point.accuracy if point else None,
        "curve": [p.data() for p in summary.curve],
        "page": summary.page.number if summary.page else 1,
        "pages": summary.page.pages if summary.page else 1,
    }


def _withdrawal_data(withdrawal: accepting.Withdrawal) -> dict[str, Any]:
    return {
        "withdrawn": withdrawal.withdrawn,
        "kept": withdrawal.kept_count,
        "kept_examples": [vars(k) for k in withdrawal.kept],
    }


class WeakLabelAccept(RulesAPIView):
    @extend_schema(
        parameters=[AcceptPreviewQuerySerializer],
        responses=AcceptSummarySerializer,
        description="What accepting from this source at this threshold would do; nothing is written. "
        "Coverage and accuracy are on the examples people labeled, at the threshold and along a curve; "
        "`preview` lists a page of 50 of the examples it would label (`page`), each with the proposed label "
        "and the rules' votes; `pages` says how many pages there are.",
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        data = AcceptPreviewQuerySerializer(data=request.query_params.dict())
        data.is_valid(raise_exception=True)
        source = accepting.source_clean(run, data.validated_data.get("source"))
        summary = accepting.accept_summary(
            run=run, source=source, threshold=data.validated_data["threshold"], page=data.validated_data["page"]
        )
        return Response(AcceptSummarySerializer(_summary_data(summary)).data)

    @extend_schema(
        request=AcceptInputSerializer,
        responses={200: s.AcceptedSerializer, 409: None},
        description="Label the examples nobody labeled with the source's labels of at least this "
        "confidence. A person's label is never replaced; each change is an example revision. A run "
        "older than the newest finished one answers 409 with what would change unless `confirm` is true. "
        "`only` (ids to accept) or `except` (ids to leave out) accepts part of them; ids the threshold "
        "does not select are ignored.",
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        data = AcceptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        accepted = accepting.weak_labels_accept(run=run, user=request.user, **data.validated_data)
        return Response({"accepted": accepted})


class WeakLabelWithdraw(RulesAPIView):
    @extend_schema(responses=WithdrawalSerializer, description="What withdrawing would do; nothing is written.")
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        plan = accepting.withdrawal_plan(run=self.get_run(run_id))
        return Response(WithdrawalSerializer(_withdrawal_data(plan)).data)

    @extend_schema(
        request=None,
        responses=WithdrawalSerializer,
        description="Take the run's labels off the examples that still carry them (each a revision). "
        "Labels a person has set since are kept and listed.",
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        done = accepting.weak_labels_withdraw(run=self.get_run(run_id), user=request.user)
        return Response(WithdrawalSerializer(_withdrawal_data(done)).data)
