"""Labeling and browsing latency under concurrent annotators, through a real WSGI server.

    .venv/bin/python bench/web.py [--examples 100000] [--clients 20] [--rounds 50]
    .venv/bin/python bench/web.py --examples 5000 --rounds 10      # a quick try

The script migrates a fresh SQLite database in a temporary SHIKOMI_DATA_DIR, creates a
chat project with five labels, one annotator per client and N chat examples, then starts
gunicorn (config.wsgi, 2 workers x 4 threads) on a free loopback port. Each client logs in
through the login form with its own session and, for every round, does what an annotator
does: opens the labeling queue, submits a label for the example it was shown (the
messages sent back unchanged, as the browser does) and opens a random page of the example
browser. Every request is timed.

A submit answered 409 is a conflict the app refused on purpose (another annotator changed
the example since it was shown), not an error. After the run, every submit answered 302
must be stored as exactly one submitted annotation with the label sent; the script exits
non-zero on any error or lost write.

Then, with the server stopped, the pages one person opens are timed inside the Django
process (server time: middleware, queries and templates, no HTTP), one request at a time:
the project dashboard (after giving 60% of the examples a label and a split, and two raters'
answers on every fifth, so there is a class balance and agreement to show), the same after
an answer changed (the agreement computed again), the examples list API's first page, its
last page by key (a cursor) and by number (the old ?page=N), and the browser's first and
last pages. The dashboard is set beside Label Studio's overview counts on the same number of
tasks (LABEL_STUDIO_MS, measured earlier on this machine).

    .venv/bin/python bench/web.py --pages-only          # only the one-person page times

Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SLUG = "bench"
LABELS = ["billing", "shipping", "returns", "account", "other"]
PASSWORD = "bench-password-1"
PAGE_SIZE = 50  # curation.workspace.views.PAGE_SIZE

EXAMPLE_RE = re.compile(r'data-example="(\d+)"')
VERSION_RE = re.compile(r'name="version" value="(\d+)"')
TURNS_RE = re.compile(r'<ol class="chat editor" id="turns">(.*?)</ol>', re.S)
ROLE_RE = re.compile(r'<option value="(\w+)" selected>')
TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)
CONTENT_RE = re.compile(r'<textarea name="content"[^>]*>(.*?)</textarea>', re.S)


def setup_django(data_dir: Path) -> None:
    os.environ.update(
        SHIKOMI_DATA_DIR=str(data_dir),
        SECRET_KEY="bench",
        DJANGO_SETTINGS_MODULE="config.settings",
        ALLOWED_HOSTS="127.0.0.1,testserver",  # testserver: the in-process page timings
        DEBUG="false",
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def load(examples: int, clients: int) -> None:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from curation.core.services import content_hash
    from curation.models import Example, Label, Membership, Project, Role

    call_command("migrate", verbosity=0)
    project = Project.objects.create(name="Bench", slug=SLUG, kind=Project.Kind.CHAT, annotations_per_example=1)
    Label.objects.bulk_create(Label(project=project, name=name) for name in LABELS)
    hashed = make_password(PASSWORD)  # one slow hash, shared by every annotator
    users = User.objects.bulk_create(User(username=f"annotator{i}", password=hashed) for i in range(clients))
    Membership.objects.bulk_create(Membership(project=project, user=u, role=Role.ANNOTATOR) for u in users)
    batch: list[Example] = []
    for i in range(examples):
        messages = [
            {"role": "user", "content": f"Order #{i}: my parcel has not arrived. 荷物がまだ届きません ({i})."},
            {"role": "assistant", "content": f"Sorry about order #{i}. I have asked the carrier to trace it."},
        ]
        batch.append(
            Example(
                project=project,
                messages=messages,
                content_hash=content_hash(messages),
                source=Example.Source.IMPORTED,
            )
        )
        if len(batch) == 2000:
            Example.objects.bulk_create(batch)
            batch = []
    Example.objects.bulk_create(batch)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        SHIKOMI_DATA_DIR=str(data_dir),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        SECRET_KEY="bench-secret-key-not-for-production",
    )
    env.pop("DATABASE_URL", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--keep-alive",
        "10",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or still loading
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{log.read_text()[-2000:]}")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@dataclass
class Client:
    """One annotator: its timings, the submits the server accepted, what went wrong."""

    username: str
    timings: list[tuple[str, int, float]] = field(default_factory=list)  # endpoint, status, ms
    accepted: list[tuple[int, str]] = field(default_factory=list)  # example id, label sent
    errors: list[str] = field(default_factory=list)


def run_client(client: Client, base: str, rounds: int, pages: int, start: threading.Barrier, seed: int) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    login = f"{base}/accounts/login/"
    logged_in = False
    try:
        session.get(login)
        response = session.post(
            login,
            data={
                "username": client.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login},
            allow_redirects=False,
        )
        logged_in = response.status_code == 302
        if not logged_in:
            client.errors.append(f"login: {response.status_code}")
    except (requests.RequestException, KeyError) as exc:
        client.errors.append(f"login: {exc!r}")
    start.wait()  # every client starts together, logged in or not, so none waits for ever
    if not logged_in:
        return

    def timed(endpoint: str, method: str, url: str, expected: tuple[int, ...], **kwargs) -> requests.Response | None:
        started = time.perf_counter()
        try:
            r = session.request(method, url, allow_redirects=False, timeout=60, **kwargs)
        except requests.RequestException as exc:
            client.timings.append((endpoint, 0, (time.perf_counter() - started) * 1000))
            client.errors.append(f"{endpoint}: {exc!r}")
            return None
        client.timings.append((endpoint, r.status_code, (time.perf_counter() - started) * 1000))
        if THINK_SECONDS:
            # A person reads, decides and types between requests.
            time.sleep(rng.uniform(0.5, 1.5) * THINK_SECONDS)
        if r.status_code not in expected:
            title = TITLE_RE.search(r.text)
            first = title.group(1) if title else next((line for line in r.text.splitlines() if line.strip()), "")
            client.errors.append(f"{endpoint}: {r.status_code} {first.strip()[:200]}")
        return r

    queue = f"{base}/p/{SLUG}/label/"
    for _round in range(rounds):
        r = timed("queue GET", "GET", queue, (200,))
        if r is not None and r.status_code == 200:
            found, version = EXAMPLE_RE.search(r.text), VERSION_RE.search(r.text)
            turns = TURNS_RE.search(r.text)
            if not (found and version and turns):
                client.errors.append("queue GET: no example on the page")
            else:
                label = rng.choice(LABELS)
                data = {
                    "csrfmiddlewaretoken": session.cookies["csrftoken"],
                    "version": version.group(1),
                    "label": label,
                    "role": ROLE_RE.findall(turns.group(1)),
                    "content": [html.unescape(t) for t in CONTENT_RE.findall(turns.group(1))],
                }
                submit = f"{queue}{found.group(1)}/submit/"
                s = timed("submit POST", "POST", submit, (302, 409), data=data, headers={"Referer": queue})
                if s is not None and s.status_code == 302:
                    client.accepted.append((int(found.group(1)), label))
        timed("browse GET", "GET", f"{base}/p/{SLUG}/examples/?page={rng.randint(1, pages)}", (200,))


THINK_SECONDS = 0.0


def check_writes(clients: list[Client]) -> dict[str, int]:
    """Every accepted submit stored once, with its label; nothing stored that was not accepted."""
    from django.db.models import Sum

    from curation.models import Annotation, Example

    rows = Annotation.objects.filter(status=Annotation.Status.SUBMITTED, example__project__slug=SLUG).values_list(
        "annotator__username", "example_id", "label__name"
    )
    stored: dict[tuple[str, int], list[str]] = {}
    for username, example_id, label in rows:
        stored.setdefault((username, example_id), []).append(label)
    accepted = {(c.username, example_id): label for c in clients for example_id, label in c.accepted}
    lost = sum(1 for key, label in accepted.items() if stored.get(key) != [label])
    accepted_total = sum(len(c.accepted) for c in clients)
    extra_rows = sum(len(labels) for key, labels in stored.items() if key not in accepted)
    repeated = sum(len(labels) - 1 for labels in stored.values() if len(labels) > 1)
    counted = Example.objects.filter(project__slug=SLUG).aggregate(n=Sum("annotation_count"))["n"] or 0
    return {
        "accepted": accepted_total,
        "stored": sum(len(labels) for labels in stored.values()),
        "lost": lost,
        "duplicate": extra_rows + repeated + (accepted_total - len(accepted)),
        "annotation_count": counted,
        "examples": len({example_id for _username, example_id in stored}),
    }


def server_cpu(server: subprocess.Popen) -> float:
    """CPU seconds used so far by gunicorn's master and workers (Linux)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    total = 0
    for pid in [server.pid, *map(int, children)]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds every process on the machine has used so far (Linux), to tell whether
    something besides this benchmark ran during it."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


# Label Studio's overview counts ("overview counts": its project page's task, annotation and
# label summaries) at 100,000 tasks, p50 server time, measured on this machine for issue 18.
# Label Studio is not installed here now, so this script cannot run it again; the figure is
# only comparable to a run on the same machine with the same number of examples.
LABEL_STUDIO_MS = {"dashboard": 209.0}
RATERS = ("rater1", "rater2")


def seed_answers(examples: int) -> None:
    """What a project in use has: 60% of the examples labelled, splits, and two raters'
    answers on every fifth example (agreeing on four in five; the agreeing ones resolved, as
    consensus does), so that the dashboard has a class balance, progress and agreement."""
    from django.contrib.auth.models import User
    from django.db.models import F
    from django.utils import timezone

    from curation.models import Annotation, Example, Label, Membership, Project, Role

    project = Project.objects.get(slug=SLUG)
    labels = list(Label.objects.filter(project=project).order_by("id"))
    ids = list(Example.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    first = ids[0]
    for offset in range(6):  # of every ten examples, six get a label and four none
        rows = Example.objects.filter(project=project).annotate(k=(F("id") - first) % 10).filter(k=offset)
        rows.update(label=labels[offset % len(labels)])
    splits = ((0.7, "train"), (0.85, "validation"), (1.0, "test"))
    low = 0
    for share, split in splits:
        high = ids[min(len(ids) - 1, int(len(ids) * share) - 1)]
        Example.objects.filter(project=project, id__gte=low, id__lte=high).update(split=split)
        low = high + 1
    raters = [User.objects.create_user(name, password=PASSWORD) for name in RATERS]
    Membership.objects.bulk_create(Membership(project=project, user=u, role=Role.ANNOTATOR) for u in raters)
    answered = ids[::5]
    answers = []
    for n, example_id in enumerate(answered):
        first_label = labels[n % len(labels)]
        second_label = first_label if n % 5 else labels[(n + 1) % len(labels)]
        for rater, label in zip(raters, (first_label, second_label), strict=True):
            answers.append(
                Annotation(
                    example_id=example_id,
                    annotator=rater,
                    status=Annotation.Status.SUBMITTED,
                    label=label,
                    based_on_version=1,
                    submitted_at=timezone.now(),
                )
            )
    Annotation.objects.bulk_create(answers, batch_size=5000)
    Example.objects.filter(id__in=answered).update(annotation_count=2)
    agreed = [example_id for n, example_id in enumerate(answered) if n % 5]
    for start in range(0, len(agreed), 5000):
        Example.objects.filter(id__in=agreed[start : start + 5000]).update(resolved_at=timezone.now())


def page_cases(examples: int) -> list[tuple[str, str, object]]:
    """(name, URL, what to do before each request) for the one-person page timings."""
    from curation.models import Annotation, Example, Label
    from curation.workspace.pagination import cursor_token

    ids = Example.objects.filter(project__slug=SLUG).order_by("-id").values_list("id", flat=True)
    last_key = cursor_token([ids[PAGE_SIZE]]) if examples > PAGE_SIZE else ""
    pages = max(1, math.ceil(examples / PAGE_SIZE))
    answer = Annotation.objects.filter(annotator__username=RATERS[0], status=Annotation.Status.SUBMITTED).first()
    labels = list(Label.objects.filter(project__slug=SLUG).values_list("id", flat=True))
    turn = iter(range(10**9))

    def change_an_answer() -> None:
        # A rater changes an answer (saved, so its updated_at moves on: every change is new):
        # the agreement's inputs changed, so it is computed again.
        answer.label_id = labels[next(turn) % len(labels)]
        answer.save()

    api = f"/api/projects/{SLUG}/examples/"
    return [
        ("dashboard", f"/p/{SLUG}/", None),
        ("dashboard, an answer changed", f"/p/{SLUG}/", change_an_answer),
        ("list API, first page", api, None),
        ("list API, last page by key", f"{api}?cursor={last_key}", None),
        ("list API, last page by number", f"{api}?page={pages}", None),
        ("browser, first page", f"/p/{SLUG}/examples/", None),
        ("browser, last page", f"/p/{SLUG}/examples/?page={pages}", None),
    ]


def time_pages(examples: int, rounds: int) -> list[dict]:
    """Each case `rounds` times after one warm-up request: wall and CPU milliseconds of the
    whole Django stack (in this process), and the queries one request makes."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client as TestClient
    from django.test.utils import CaptureQueriesContext

    from curation.models import Membership, Project, Role

    admin = User.objects.create_user("bench-admin", password=PASSWORD)
    Membership.objects.create(project=Project.objects.get(slug=SLUG), user=admin, role=Role.ADMIN)
    client = TestClient()
    client.force_login(admin)
    results = []
    for name, url, before in page_cases(examples):
        response = client.get(url)
        assert response.status_code == 200, f"{name}: {response.status_code}"
        wall, cpu = [], []
        for _ in range(rounds):
            if before:
                before()
            started, cpu_started = time.perf_counter(), time.process_time()
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
            assert response.status_code == 200, f"{name}: {response.status_code}"
        results.append({"name": name, "wall": wall, "cpu": cpu, "queries": len(queries)})
    return results


def print_pages(results: list[dict], examples: int) -> None:
    print()
    print(f"One person, one request at a time, server time in the Django process ({examples:,} examples):")
    print()
    print("| page | requests | queries | p50 ms | p95 ms | CPU p50 ms | Label Studio p50 ms | p50 / Label Studio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        p50 = statistics.median(row["wall"])
        theirs = LABEL_STUDIO_MS.get(row["name"].split(",")[0])
        print(
            f"| {row['name']} | {len(row['wall'])} | {row['queries']} | {p50:.1f} | {percentile(row['wall'], 95):.1f} "
            f"| {statistics.median(row['cpu']):.1f} | {f'{theirs:.0f}' if theirs else '—'} "
            f"| {f'{p50 / theirs:.2f}' if theirs else '—'} |"
        )
    by_name = {row["name"]: statistics.median(row["wall"]) for row in results}
    first = by_name["list API, first page"]
    print()
    print(
        f"list API, last page / first page: by key {by_name['list API, last page by key'] / first:.1f}x, "
        f"by number {by_name['list API, last page by number'] / first:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="chat examples in the project")
    parser.add_argument("--clients", type=int, default=20, help="concurrent annotators")
    parser.add_argument("--rounds", type=int, default=50, help="queue, submit and browse requests per client")
    parser.add_argument(
        "--think-ms", type=float, default=0, help="mean pause after each request (0: clients never pause)"
    )
    parser.add_argument("--pages-only", action="store_true", help="only the one-person page times")
    parser.add_argument("--page-rounds", type=int, default=50, help="requests per page for the page times")
    args = parser.parse_args()
    global THINK_SECONDS
    THINK_SECONDS = args.think_ms / 1000

    machine = f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    print(f"# {time.strftime('%Y-%m-%d')}, {machine}, load average {os.getloadavg()[0]:.1f}")
    if not args.pages_only:
        print(
            f"# {args.examples:,} examples, {args.clients} clients x {args.rounds} rounds, "
            f"think {args.think_ms:g} ms, gunicorn 2 workers x 4 threads"
        )
    failed = False
    with tempfile.TemporaryDirectory(prefix="shikomi-bench-") as tmp:
        data_dir = Path(tmp)
        setup_django(data_dir)
        started = time.perf_counter()
        load(args.examples, args.clients)
        from django.db import connections

        connections.close_all()
        print(f"# loaded in {time.perf_counter() - started:.1f} s")
        if not args.pages_only:
            failed = run_concurrent(args, data_dir)
        seed_answers(args.examples)
        print_pages(time_pages(args.examples, args.page_rounds), args.examples)
    if failed:
        sys.exit(1)


def run_concurrent(args: argparse.Namespace, data_dir: Path) -> bool:
    """The annotators against gunicorn; True when anything went wrong."""
    port = free_port()
    server = start_server(data_dir, port, data_dir / "gunicorn.log")
    try:
        clients = [Client(f"annotator{i}") for i in range(args.clients)]
        start = threading.Barrier(args.clients + 1)
        pages = max(1, math.ceil(args.examples / PAGE_SIZE))
        threads = [
            threading.Thread(target=run_client, args=(c, f"http://127.0.0.1:{port}", args.rounds, pages, start, i))
            for i, c in enumerate(clients)
        ]
        for t in threads:
            t.start()
        start.wait()
        began, cpu_began, busy_began = time.perf_counter(), time.process_time(), machine_busy()
        server_began = server_cpu(server)
        for t in threads:
            t.join()
        wall, client_cpu = time.perf_counter() - began, time.process_time() - cpu_began
        busy = machine_busy() - busy_began
        served = server_cpu(server) - server_began
    finally:
        stop_server(server)
    server_log = (data_dir / "gunicorn.log").read_text(errors="replace")
    writes = check_writes(clients)

    timings = [t for c in clients for t in c.timings]
    errors = [e for c in clients for e in c.errors]
    print()
    print("| endpoint | requests | errors | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for endpoint in ("queue GET", "submit POST", "browse GET", "all"):
        rows = [t for t in timings if endpoint == "all" or t[0] == endpoint]
        if not rows:
            continue
        ms = [t[2] for t in rows]
        expected = {"queue GET": (200,), "submit POST": (302, 409), "browse GET": (200,)}
        failed = sum(1 for name, status, _ms in rows if status not in expected[name])
        print(
            f"| {endpoint} | {len(rows):,} | {failed} | {statistics.median(ms):.1f} | {percentile(ms, 95):.1f} "
            f"| {percentile(ms, 99):.1f} | {max(ms):.1f} |"
        )
    conflicts = sum(1 for name, status, _ms in timings if name == "submit POST" and status == 409)
    print()
    print(f"throughput: {len(timings) / wall:.1f} req/s ({len(timings):,} requests in {wall:.1f} s)")
    print(
        f"CPU: server {served:.1f} s ({served / max(len(timings), 1) * 1000:.1f} ms a request), "
        f"clients {client_cpu:.1f} s, whole machine {busy:.1f} s of {wall * (os.cpu_count() or 1):.1f} s"
    )
    print(
        f"submits accepted (302): {writes['accepted']:,} on {writes['examples']:,} distinct examples; "
        f"conflicts refused (409): {conflicts:,}"
    )
    print(f"submitted annotations stored: {writes['stored']:,}; annotation_count total: {writes['annotation_count']:,}")
    print(f"lost writes: {writes['lost']}, duplicate writes: {writes['duplicate']}")
    print(f"errors: {len(errors)}")
    for error in errors[:5]:
        print(f"  {error}")
    if errors and "Error" in server_log:
        print("server log (tail):")
        print(server_log[-2000:])
    return bool(errors or writes["lost"] or writes["duplicate"] or writes["annotation_count"] != writes["stored"])


if __name__ == "__main__":
    main()
