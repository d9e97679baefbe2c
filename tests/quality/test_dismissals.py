"""A reviewer dismisses a quality finding that is not a problem (the shop's own address is not
personal data; two examples are meant to be alike), with a reason. The dismissal is recorded,
later checks, the readiness report and the launch gates leave the finding out while the
example is unchanged, an edit brings it back, and it can be undone."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from curation.core.services import example_update
from curation.models import DuplicateCluster, ExampleCheck, FindingDismissal
from curation.quality import dismissals, gates, readiness
from curation.quality.services import example_redact, leaks, pii_unredacted
from tests.conftest import PASSWORD
from tests.quality.conftest import add, chat, run_scan

SHOP = "support@kumo-coffee.example"
SHOP_TEXT = f"Write to {SHOP} if the beans arrive stale."


@pytest.fixture
def shop(project, users):
    """Two answers that give the shop's own address, and one customer's address."""
    admin = users["admin"]
    return {
        "first": add(project, admin, "My beans are stale.", SHOP_TEXT, split="train"),
        "second": add(project, admin, "The grinder is loud.", f"Sorry! {SHOP_TEXT}", split="train"),
        "customer": add(project, admin, "Reply to hana.sato@example.com please", "We will.", split="train"),
    }


def key_of(example, text: str = SHOP) -> str:
    return next(f["key"] for f in dismissals.pii_findings(example) if f["text"] == text)


def pii_ids(project) -> set[int]:
    return set(ExampleCheck.objects.filter(pii_count__gt=0, scan__project=project).values_list("example_id", flat=True))


def pii_line(project):
    return next(line for line in readiness.readiness(project).lines if line.key == "pii")


def test_a_dismissed_address_is_left_out_by_the_next_check_until_the_text_changes(
    project, users, shop, django_capture_on_commit_callbacks
):
    admin, reviewer = users["admin"], users["reviewer"]
    run_scan(project, admin, django_capture_on_commit_callbacks)
    assert pii_ids(project) == {e.pk for e in shop.values()}
    first = shop["first"]
    assert dismissals.pii_dismiss(example=first, user=reviewer, key=key_of(first), note="the shop's own address") == 1
    record = FindingDismissal.objects.get(example=first)
    assert (record.kind, record.reason, record.created_by, record.note) == (
        "pii",
        "not_personal",
        reviewer,
        "the shop's own address",
    )
    assert SHOP not in record.key  # the key is a hash, not the data
    # At once: the list, the report and the gate no longer count it.
    assert pii_ids(project) == {shop["second"].pk, shop["customer"].pk}
    assert "2 examples hold personal data" in pii_line(project).detail
    # The next check leaves it out too.
    scan = run_scan(project, admin, django_capture_on_commit_callbacks)
    assert pii_ids(project) == {shop["second"].pk, shop["customer"].pk}
    assert scan.summary["dismissed"] == {"pii": 1}
    # An edit to the example's text brings it back.
    example_update(example=first, user=admin, version=first.version, messages=chat("Stale beans!", SHOP_TEXT))
    assert pii_unredacted(project)[0] == 3
    run_scan(project, admin, django_capture_on_commit_callbacks)
    assert shop["first"].pk in pii_ids(project)


def test_dismissing_in_every_example_and_undoing_it(project, users, shop, django_capture_on_commit_callbacks):
    reviewer = users["reviewer"]
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    first = shop["first"]
    n = dismissals.pii_dismiss(example=first, user=reviewer, key=key_of(first), everywhere=True)
    assert n == 2 and FindingDismissal.objects.count() == 2
    assert pii_ids(project) == {shop["customer"].pk}
    restored = dismissals.dismissals_restore(
        project=project, user=reviewer, ids=FindingDismissal.objects.values_list("pk", flat=True)
    )
    assert restored == 2 and pii_ids(project) == {e.pk for e in shop.values()}


def test_the_gate_and_redaction_respect_a_dismissal(project, users, shop, django_capture_on_commit_callbacks):
    project.block_on_pii = True
    project.save()
    admin = users["admin"]
    run_scan(project, admin, django_capture_on_commit_callbacks)
    dismissals.pii_dismiss(example=shop["first"], user=admin, key=key_of(shop["first"]), everywhere=True)
    blockers = gates.launch_blockers(project)
    assert [b.gate for b in blockers if b.gate == "pii"] == ["pii"]
    assert "1 example still holds" in next(b.message for b in blockers if b.gate == "pii")
    # Redacting an example keeps the dismissed address, and the dismissal follows the new text.
    example = shop["customer"]
    extra = chat(f"Reply to hana.sato@example.com please. {SHOP_TEXT}", "We will.")
    example_update(example=example, user=admin, version=example.version, messages=extra)
    example.refresh_from_db()
    dismissals.pii_dismiss(example=example, user=admin, key=key_of(example))
    assert example_redact(example=example, user=admin) == 1
    example.refresh_from_db()
    assert SHOP in example.messages[0]["content"] and "[EMAIL]" in example.messages[0]["content"]
    assert FindingDismissal.objects.get(example=example).content_hash == example.content_hash
    assert not [b for b in gates.launch_blockers(project) if b.gate == "pii"]


def test_only_reviewers_and_admins_dismiss_and_the_finding_must_be_there(project, users, shop):
    with pytest.raises(PermissionDenied):
        dismissals.pii_dismiss(example=shop["first"], user=users["annotator"], key=key_of(shop["first"]))
    with pytest.raises(dismissals.DismissError) as gone:
        dismissals.pii_dismiss(example=shop["first"], user=users["reviewer"], key="0" * 40)
    assert gone.value.field == "key"
    with pytest.raises(dismissals.DismissError) as reason:
        dismissals.pii_dismiss(example=shop["first"], user=users["reviewer"], key=key_of(shop["first"]), reason="meh")
    assert reason.value.field == "reason"


def test_the_pages_give_the_reason_per_row_and_dismiss_with_a_reason(
    client, project, users, shop, django_capture_on_commit_callbacks
):
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    client.login(username="rhea", password=PASSWORD)
    page = client.get(f"/p/{project.slug}/quality/pii/").content.decode()
    assert f"E-mail address: {SHOP}" in page and "Found as an address of the form name@domain." in page
    first = shop["first"]
    done = client.post(
        f"/p/{project.slug}/quality/pii/{first.pk}/dismiss/",
        {"key": key_of(first), "reason": "not_personal", "note": "our address"},
        follow=True,
    ).content.decode()
    assert "Finding dismissed in example" in done
    assert "1 finding dismissed by a reviewer is left out." in done
    listed = client.get(f"/p/{project.slug}/quality/dismissals/").content.decode()
    assert f"E-mail address: {SHOP}" in listed and "Not personal data" in listed and "rhea" in listed
    wrong = client.post(
        f"/p/{project.slug}/quality/pii/{first.pk}/dismiss/",
        {"key": key_of(shop["second"]), "reason": "x"},
        follow=True,
    )
    assert "Reason: Choose one of" in wrong.content.decode()
    # An annotator may not.
    client.login(username="annie", password=PASSWORD)
    assert client.post(f"/p/{project.slug}/quality/pii/{shop['second'].pk}/dismiss/").status_code == 403
    # Undo, from the list.
    client.login(username="rhea", password=PASSWORD)
    record = FindingDismissal.objects.get()
    client.post(f"/p/{project.slug}/quality/dismissals/restore/", {"id": record.pk, "back": "dismissals"})
    assert not FindingDismissal.objects.exists() and first.pk in pii_ids(project)


def test_a_duplicate_group_dismissed_as_intended_stays_out_of_the_next_check(
    client, project, users, corpus, django_capture_on_commit_callbacks
):
    admin = users["admin"]
    run_scan(project, admin, django_capture_on_commit_callbacks)
    page = client_page(client, f"/p/{project.slug}/quality/duplicates/?show=all")
    assert "exact copy" in page and "(MinHash of word 3-grams)" in page
    cluster = DuplicateCluster.objects.filter(scan__project=project, size=2).first()
    client.post(f"/p/{project.slug}/quality/duplicates/{cluster.pk}/dismiss/", {"reason": "intended_duplicate"})
    cluster.refresh_from_db()
    assert cluster.resolution == "dismissed" and cluster.resolved_by == admin
    before = DuplicateCluster.objects.filter(scan=cluster.scan).count()
    scan = run_scan(project, admin, django_capture_on_commit_callbacks)
    assert DuplicateCluster.objects.filter(scan=scan).count() == before - 1
    assert scan.summary["duplicates"]["dismissed_pairs"] >= 1
    # Undo: the next check finds the pair again.
    dismissals.dismissals_restore(
        project=project, user=admin, ids=FindingDismissal.objects.values_list("pk", flat=True)
    )
    scan = run_scan(project, admin, django_capture_on_commit_callbacks)
    assert DuplicateCluster.objects.filter(scan=scan).count() == before


def client_page(client, url: str) -> str:
    client.login(username="adam", password=PASSWORD)
    return client.get(url).content.decode()


def test_a_dismissed_leak_no_longer_blocks_a_launch(client, project, users, corpus, django_capture_on_commit_callbacks):
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    evaluated, trained = corpus["exact_copy"], corpus["train_twin"]
    assert (evaluated.pk, trained.pk) in {(leak.evaluated.pk, leak.trained.pk) for leak in leaks(project)}
    page = client_page(client, f"/p/{project.slug}/quality/leakage/")
    assert "Exact: exact copy" in page
    client.post(
        f"/p/{project.slug}/quality/leakage/{evaluated.pk}/dismiss/", {"trained": trained.pk, "reason": "false_alarm"}
    )
    assert (evaluated.pk, trained.pk) not in {(leak.evaluated.pk, leak.trained.pk) for leak in leaks(project)}


def test_the_api_dismisses_lists_and_undoes(project, users, shop, django_capture_on_commit_callbacks):
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    api = APIClient()
    api.login(username="rhea", password=PASSWORD)
    base = f"/api/projects/{project.slug}/quality/"
    listed = api.get(base + "pii/").json()["results"]
    row = next(r for r in listed if r["id"] == shop["first"].pk)
    key = row["findings"][0]["key"]
    missing = api.post(base + "dismissals/", {"kind": "pii", "example": shop["first"].pk}, format="json")
    assert missing.status_code == 400 and "key" in missing.json()
    made = api.post(
        base + "dismissals/",
        {"kind": "pii", "example": shop["first"].pk, "key": key, "everywhere": True, "note": "shop"},
        format="json",
    )
    assert made.status_code == 201 and made.json() == {"dismissed": 2}
    assert {r["id"] for r in api.get(base + "pii/").json()["results"]} == {shop["customer"].pk}
    found = api.get(base + "dismissals/", {"kind": "pii"}).json()["results"]
    assert len(found) == 2 and found[0]["reason"] == "not_personal" and found[0]["applies"] is True
    assert found[0]["created_by"] == "rhea"
    undone = api.post(base + "dismissals/restore/", {"ids": [found[0]["id"]]}, format="json")
    assert undone.json() == {"restored": 1}
    assert api.post(base + "dismissals/restore/", {"ids": [999999]}, format="json").status_code == 404
    api.login(username="annie", password=PASSWORD)
    assert api.post(base + "dismissals/restore/", {"ids": [found[1]["id"]]}, format="json").status_code == 403
