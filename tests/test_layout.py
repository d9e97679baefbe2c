"""The layout stays the architecture: the import contracts in pyproject.toml, no import cycle
anywhere, no layer-named modules, no oversized modules or functions, plain-Python packages free
of Django, and each feature's templates in its own folder (docs/architecture.md).

Each check fails with the full list of offenders, so one run shows everything that is left.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOT_PACKAGES = ("curation", "training", "accounts", "config", "llm", "text")
APPS = ("curation", "training", "accounts")
PLAIN_PYTHON = (ROOT / "llm", ROOT / "text", ROOT / "training" / "engine")
DJANGO_FAMILY = {"django", "rest_framework", "huey"}
LAYER_PREFIXES = ("views_", "api_", "serializers_", "forms_")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
TEMPLATES = ROOT / "templates"
# App-level packages, not features: their code may use any of the app's templates.
APP_LEVEL = {"management", "templatetags", "demo", "models"}


def app_modules() -> Iterator[Path]:
    """Every Python file of app code: the root packages, migrations left out (Django writes them)."""
    for package in ROOT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                yield path


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def where(path: Path, line: int | None = None) -> str:
    relative = path.relative_to(ROOT).as_posix()
    return f"{relative}:{line}" if line else relative


def fail_on(title: str, found: list[str]) -> None:
    """Fail with the whole list, without pytest's repr of the assertion around it."""
    if found:
        pytest.fail(f"{title} ({len(found)}):\n  " + "\n  ".join(found), pytrace=False)


# --- import contracts -------------------------------------------------------------------------


def test_import_contracts() -> None:
    """lint-imports with the contracts in pyproject.toml, in a fresh process (it puts the project on
    sys.path itself) and without its on-disk cache, so a run never reads a stale graph."""
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "160"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
            "--no-logo",
            "pyproject.toml",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode:
        pytest.fail(result.stdout + result.stderr, pytrace=False)


def import_cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative): each is a set of
    modules where every one reaches every other through imports."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return sorted(components)


def test_no_import_cycle_between_any_two_modules() -> None:
    """Imports inside functions count: a lazy import hides a cycle from Python, not from a reader.
    Imports under `if TYPE_CHECKING:` never run and do not count."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*ROOT_PACKAGES, cache_dir=None, exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if m.split(".")[0] in ROOT_PACKAGES}
    found = []
    for component in import_cycles(graph, modules):
        members = set(component)
        entry = "cycle among " + ", ".join(component) + ":"
        for importer in component:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = ", ".join(f"l.{d['line_number']}" for d in details)
                entry += f"\n      {importer} -> {imported} ({lines})"
        found.append(entry)
    fail_on("import cycles", found)


# --- layout -----------------------------------------------------------------------------------


def test_no_layer_prefixed_modules() -> None:
    """A feature is a package holding views.py, api.py...; `views_rules.py` is the old layout."""
    found = [
        where(path)
        for app in APPS
        for path in sorted((ROOT / app).rglob("*"))
        if path.name.startswith(LAYER_PREFIXES) and (path.suffix == ".py" or path.is_dir())
    ]
    fail_on("layer-prefixed modules", found)


def test_no_module_over_600_lines() -> None:
    found = []
    for path in app_modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{where(path)} ({lines} lines)")
    fail_on(f"modules over {MAX_MODULE_LINES} lines", found)


def test_no_function_over_80_lines() -> None:
    """Counted from the `def` line to the last line of the body, docstring included."""
    found = []
    for path in app_modules():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{where(path, node.lineno)} {node.name} ({lines} lines)")
    fail_on(f"functions over {MAX_FUNCTION_LINES} lines", found)


def test_plain_python_packages_import_no_django() -> None:
    """Every import statement, lazy or under TYPE_CHECKING alike: these packages are the ones a
    script or a GPU worker loads without Django settings."""
    found = []
    for package in PLAIN_PYTHON:
        for path in sorted(package.rglob("*.py")):
            for node in ast.walk(parse(path)):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in DJANGO_FAMILY:
                        found.append(f"{where(path, node.lineno)} imports {name}")
    fail_on("Django imports in llm/, text/, training/engine/", found)


# --- templates --------------------------------------------------------------------------------

TEMPLATE_NAME = re.compile(r"^[\w./-]+\.html(#[\w-]+)?$")
TEMPLATE_TAG = re.compile(r"""\{%-?\s*(?:include|extends)\s+["']([^"']+)["']""")


def owner(parts: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(app, feature) of a path relative to the project or to templates/: `curation/rules/views.py`
    and `curation/rules/edit.html` belong to (curation, rules); `curation/admin.py` and
    `accounts/tokens.html` to their app as a whole (app, None); `base.html` and
    `registration/login.html` to the project (None, None)."""
    if len(parts) < 2 or parts[0] not in APPS:
        return None, None
    return parts[0], parts[1] if len(parts) > 2 and parts[1] not in APP_LEVEL else None


def template_references() -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(where, owner path parts, template name) for each template named in app code (any string
    literal that is a template name: render, template_name, render_to_string...) and for each
    literal {% include %} / {% extends %} in templates/."""
    for path in app_modules():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and TEMPLATE_NAME.match(node.value):
                yield where(path, node.lineno), path.relative_to(ROOT).parts, node.value.split("#")[0]
    for path in sorted(TEMPLATES.rglob("*.html")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for name in TEMPLATE_TAG.findall(line):
                yield where(path, number), path.relative_to(TEMPLATES).parts, name.split("#")[0]


def test_templates_live_with_their_feature() -> None:
    """A feature's pages live in templates/<app>/<feature>/. It may also use the project's
    templates (base.html, registration/), its app's shared place (templates/<app>/*.html) and any
    partial (`_name.html`): partials are the pieces features share. App-level code (admin,
    templatetags, management) may use any of its app's templates."""
    found = []
    for place, parts, name in template_references():
        if name == "/".join(parts):
            continue  # drf_spectacular/swagger_ui.html extends the package's own template
        if not (TEMPLATES / name).is_file():
            found.append(f"{place} names {name}, which is not in templates/")
            continue
        app, feature = owner(parts)
        template_app, template_feature = owner(tuple(name.split("/")))
        if template_app is None or name.rsplit("/", 1)[-1].startswith("_"):
            continue
        if template_app == app and (feature is None or template_feature in (None, feature)):
            continue
        home = f"templates/{app}/{feature}/" if feature else f"templates/{app}/" if app else "the project's templates"
        found.append(f"{place} uses {name}, which is outside {home}")
    fail_on("templates outside their feature", found)
