"""The quality API: the readiness report, quality checks, duplicate groups, leaks and
personal data. Reading needs membership; running checks, resolving duplicates and
redacting in bulk need the admin role, as in the browser."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework import serializers as drf_serializers
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.models import DuplicateCluster, Example, ExampleCheck, FindingDismissal
from curation.quality import dismissals, readiness, tasks
from curation.quality import serializers as s
from curation.quality import services as svc


class QualityAPIView(ProjectAPIView):
    """Reading needs membership; the rest the admin role (``project_action`` per endpoint)."""


class Readiness(QualityAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=s.ReadinessSerializer, description="One pass / warn / fail line per quality gate.")
    def get(self, request: Request, slug: str) -> Response:
        report = readiness.readiness(self.project)
        data = {
            "status": report.status,
            "lines": [line.__dict__ for line in report.lines],
            "scan": report.scan,
            "changed_since_scan": report.changed,
        }
        return Response(s.ReadinessSerializer(data).data)


class ScanList(QualityAPIView, generics.GenericAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.MANAGE_PROJECT}
    serializer_class = s.ScanSerializer

    @extend_schema(responses=s.ScanSerializer(many=True), description="Newest first.")
    def get(self, request: Request, slug: str) -> Response:
        scans = self.project.quality_scans.select_related("created_by").order_by("-number")
        page = self.paginate_queryset(scans)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={202: s.ScanSerializer},
        description="Run every quality check in the background (409 while one is running). Poll the scan.",
    )
    def post(self, request: Request, slug: str) -> Response:
        scan = tasks.quality_scan_start(project=self.project, user=request.user)
        scan.refresh_from_db()
        return Response(s.ScanSerializer(scan).data, status=status.HTTP_202_ACCEPTED)


class ScanDetail(QualityAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=s.ScanSerializer)
    def get(self, request: Request, slug: str, number: int) -> Response:
        scan = get_object_or_404(self.project.quality_scans.select_related("created_by"), number=number)
        return Response(s.ScanSerializer(scan).data)


class ClusterList(QualityAPIView, generics.GenericAPIView):
    project_action = Action.VIEW
    serializer_class = s.ClusterSerializer

    @extend_schema(responses=s.ClusterSerializer(many=True), description="Duplicate groups of the latest check.")
    def get(self, request: Request, slug: str) -> Response:
        scan = svc.latest_scan(self.project)
        clusters = DuplicateCluster.objects.filter(scan=scan).select_related("resolved_by") if scan else []
        if scan and request.query_params.get("open") in ("1", "true"):
            clusters = clusters.filter(resolved_at__isnull=True)
        page = self.paginate_queryset(clusters)
        members: dict[int, list[int]] = {}
        for cluster_id, example_id in (
            ExampleCheck.objects.filter(cluster__in=[c.pk for c in page])
            .order_by("example_id")
            .values_list("cluster_id", "example_id")
        ):
            members.setdefault(cluster_id, []).append(example_id)
        data = s.ClusterSerializer(page, many=True, context={"members": members}).data
        return self.get_paginated_response(data)


class ClusterResolve(QualityAPIView):
    project_action = Action.MANAGE_PROJECT

    @extend_schema(
        request=s.ResolveSerializer,
        responses={200: s.ClusterSerializer},
        description="Keep one example and delete the others (mode keep), or also move their label, metadata "
        "and annotations into it (mode merge). Each deletion is recorded with the whole example.",
    )
    def post(self, request: Request, slug: str, cluster_id: int) -> Response:
        cluster = get_object_or_404(DuplicateCluster, pk=cluster_id, scan__project=self.project)
        data = s.ResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        svc.cluster_resolve(
            cluster=cluster,
            user=request.user,
            keep=data.validated_data["keep"],
            merge=data.validated_data["mode"] == "merge",
        )
        cluster.refresh_from_db()
        members = {cluster.pk: list(ExampleCheck.objects.filter(cluster=cluster).values_list("example_id", flat=True))}
        return Response(s.ClusterSerializer(cluster, context={"members": members}).data)


class LeakList(QualityAPIView):
    project_action = Action.VIEW

    @extend_schema(
        responses=s.LeakSerializer(many=True),
        description="Validation and test examples that duplicate a training example, with the splits as they are now.",
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response(s.LeakSerializer(svc.leaks(self.project), many=True).data)


class KeyedFindingSerializer(s.FindingSerializer):
    key = drf_serializers.CharField(help_text=_("Names the finding for a dismissal."))


class PiiExampleKeyedSerializer(s.PiiExampleSerializer):
    findings = KeyedFindingSerializer(many=True)


class PiiList(QualityAPIView, generics.GenericAPIView):
    project_action = Action.VIEW
    serializer_class = PiiExampleKeyedSerializer

    @extend_schema(
        responses=PiiExampleKeyedSerializer(many=True),
        description="Examples the latest check found personal data in, with the findings on their current text "
        "(kinds and offsets; the data itself is not repeated), dismissed findings left out. Each finding's `key` "
        "names it for a dismissal (POST quality/dismissals/).",
    )
    def get(self, request: Request, slug: str) -> Response:
        scan = svc.latest_scan(self.project)
        ids = (
            list(
                svc.fresh_checks(scan)
                .filter(pii_count__gt=0)
                .order_by("example_id")
                .values_list("example_id", flat=True)
            )
            if scan
            else []
        )
        page = self.paginate_queryset(ids)
        examples = Example.objects.in_bulk(page)
        kept = dismissals.dismissed_keys(self.project, FindingDismissal.Kind.PII, page)
        rows = []
        for pk in page:
            example = examples[pk]
            findings = [
                {k: f[k] for k in ("message", "role", "kind", "start", "end", "key")}
                for f in dismissals.pii_findings(example)
                if f["key"] not in kept.get(pk, ())
            ]
            rows.append({"id": pk, "version": example.version, "findings": findings})
        return self.get_paginated_response(PiiExampleKeyedSerializer(rows, many=True).data)


class PiiRedact(QualityAPIView):
    project_action = Action.MANAGE_PROJECT

    @extend_schema(
        request=s.RedactSerializer,
        responses=s.RedactResultSerializer,
        description="Replace personal data by typed placeholders ([EMAIL], [PHONE], ...) in the named examples, "
        "or in every flagged one; each changed example gets a revision.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.RedactSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kinds = data.validated_data.get("kinds")
        if "ids" in data.validated_data:
            examples = Example.objects.filter(project=self.project, pk__in=data.validated_data["ids"])
            missing = set(data.validated_data["ids"]) - set(examples.values_list("pk", flat=True))
            if missing:
                return Response(
                    {"ids": [_("No such examples in this project: %(ids)s") % {"ids": sorted(missing)}]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            changed = replaced = 0
            for example in examples:
                n = svc.example_redact(example=example, user=request.user, kinds=kinds)
                changed += bool(n)
                replaced += n
        else:
            changed, replaced = svc.pii_redact_all(project=self.project, user=request.user, kinds=kinds)
        return Response({"changed": changed, "replaced": replaced})


# --- dismissed findings ------------------------------------------------------------------


class DismissalSerializer(drf_serializers.ModelSerializer):
    created_by = drf_serializers.StringRelatedField()
    applies = drf_serializers.SerializerMethodField(
        help_text=_("Whether the example is as it was when dismissed (else the finding is checked again).")
    )

    class Meta:
        model = FindingDismissal
        fields = [
            "id",
            "kind",
            "example",
            "key",
            "reason",
            "note",
            "content_hash",
            "created_by",
            "created_at",
            "applies",
        ]

    def get_applies(self, dismissal: FindingDismissal) -> bool:
        return dismissal.example.content_hash == dismissal.content_hash


class DismissInputSerializer(drf_serializers.Serializer):
    kind = drf_serializers.ChoiceField(
        [FindingDismissal.Kind.PII, FindingDismissal.Kind.DUPLICATE, FindingDismissal.Kind.LEAKAGE]
    )
    reason = drf_serializers.ChoiceField(FindingDismissal.Reason.choices, required=False)
    note = drf_serializers.CharField(required=False, allow_blank=True, max_length=dismissals.NOTE_LIMIT)
    example = drf_serializers.IntegerField(
        required=False, help_text=_("pii and leakage: the example (for leakage, the evaluation example).")
    )
    key = drf_serializers.CharField(
        required=False, max_length=200, help_text=_("pii: the finding's key, as the personal data list gives it.")
    )
    everywhere = drf_serializers.BooleanField(
        default=False, help_text=_("pii: dismiss the same finding in every example of the project that has it.")
    )
    cluster = drf_serializers.IntegerField(required=False, help_text=_("duplicate: the duplicate group."))
    trained = drf_serializers.IntegerField(required=False, help_text=_("leakage: the training example."))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needed = {"pii": ("example", "key"), "duplicate": ("cluster",), "leakage": ("example", "trained")}
        missing = {
            name: [_("Required for kind %(kind)s.") % {"kind": attrs["kind"]}]
            for name in needed[attrs["kind"]]
            if name not in attrs
        }
        if missing:
            raise drf_serializers.ValidationError(missing)
        return attrs


class DismissalList(QualityAPIView, generics.GenericAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.REVIEW}
    serializer_class = DismissalSerializer

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=list(FindingDismissal.Kind.values))],
        responses=DismissalSerializer(many=True),
        description="Dismissed quality findings, newest first, with who dismissed them and why.",
    )
    def get(self, request: Request, slug: str) -> Response:
        found = FindingDismissal.objects.filter(project=self.project).select_related("created_by", "example")
        kind = request.query_params.get("kind")
        if kind:
            if kind not in FindingDismissal.Kind.values:
                return Response(
                    {"kind": [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(FindingDismissal.Kind.values)}]},
                    status=400,
                )
            found = found.filter(kind=kind)
        page = self.paginate_queryset(found.order_by("-created_at", "-id"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=DismissInputSerializer,
        responses={201: None},
        description="Dismiss a finding: personal data that is not personal data (kind pii, with the example and "
        "the finding's key), a duplicate group meant to be alike (kind duplicate, with the cluster), or a leak "
        "(kind leakage, with the evaluation example and the training example). Later checks leave it out while "
        "the example is unchanged. Answers how many findings were dismissed.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = DismissInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        fields = {"reason": d.get("reason") or dismissals.default_reason(d["kind"]), "note": d.get("note", "")}
        if d["kind"] == FindingDismissal.Kind.DUPLICATE:
            cluster = get_object_or_404(DuplicateCluster, pk=d["cluster"], scan__project=self.project)
            n = dismissals.cluster_dismiss(cluster=cluster, user=request.user, **fields)
        else:
            example = get_object_or_404(
                Example.objects.select_related("project"), pk=d["example"], project=self.project
            )
            if d["kind"] == FindingDismissal.Kind.PII:
                n = dismissals.pii_dismiss(
                    example=example, user=request.user, key=d["key"], everywhere=d["everywhere"], **fields
                )
            else:
                trained = get_object_or_404(Example, pk=d["trained"], project=self.project)
                dismissals.leak_dismiss(evaluated=example, trained=trained, user=request.user, **fields)
                n = 1
        return Response({"dismissed": n}, status=status.HTTP_201_CREATED)


class RestoreInputSerializer(drf_serializers.Serializer):
    ids = drf_serializers.ListField(
        child=drf_serializers.IntegerField(min_value=1), min_length=1, max_length=1000, help_text=_("Dismissal ids.")
    )


class DismissalRestore(QualityAPIView):
    project_action = Action.REVIEW

    @extend_schema(
        request=RestoreInputSerializer,
        responses={200: None},
        description="Undo dismissals: their findings count again (a duplicate group reopens).",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = RestoreInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        n = dismissals.dismissals_restore(project=self.project, user=request.user, ids=data.validated_data["ids"])
        return Response({"restored": n})
