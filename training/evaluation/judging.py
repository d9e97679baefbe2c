"""Blind pairwise judging of an evaluation: did the tuned model answer better than the base
model, and better than the base model prompted with a few examples?

Every test sample of a finished evaluation gets two comparisons, tuned against base and tuned
against few-shot base. Judges (reviewers and admins) reach one by its random key and see two
answers, A and B. Which model is on the left is decided here, on the server, from a keyed hash
of the comparison and the judge: stable when the judge reloads, different between judges, and
never sent to the browser. The judgment records it, so results are counted both as the judge
gave them (left, right: the position-bias check) and as what they mean (tuned won, lost, tie).

Results are human judgments only; an LLM judge (training/evaluation/llm_judge.py) is counted apart and
compared with the humans, never mixed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from curation.core.errors import ServiceError
from training.evaluation import stats
from training.models import Comparison, EvalSample, Evaluation, Judgment

CRITERIA = {
    "terms": gettext_lazy("Use of domain terms"),
    "context": gettext_lazy("Understanding of context"),
    "consistency": gettext_lazy("Consistency"),
    "tone": gettext_lazy("Tone and fit with our voice"),
}
SCORES = range(1, 6)
OPPONENTS = (Comparison.Opponent.FEW_SHOT, Comparison.Opponent.BASE)
JUDGES_PER_PAIR = 2  # the queue offers a pair until this many people have judged it
TUNED = "tuned"


class JudgingError(ServiceError):
    """A judgment that cannot be saved; `field` names what to correct."""


def opponent_name(opponent: str) -> str:
    return str(Comparison.Opponent(opponent).label)


# --- Comparisons and sides ------------------------------------------------------------------------


def comparisons_prepare(evaluation: Evaluation) -> int:
    """Make the evaluation's comparisons (idempotent); returns how many there are. Two answers
    with the same text are kept as `identical` and never shown to a judge."""
    existing = set(Comparison.objects.filter(evaluation=evaluation).values_list("sample_id", "opponent"))
    new = []
    for sample in EvalSample.objects.filter(evaluation=evaluation).only("pk", "outputs"):
        tuned = (sample.outputs.get(TUNED) or "").strip()
        for opponent in OPPONENTS:
            if (sample.pk, opponent) in existing or opponent not in sample.outputs:
                continue
            other = (sample.outputs.get(opponent) or "").strip()
            new.append(Comparison(evaluation=evaluation, sample=sample, opponent=opponent, identical=tuned == other))
    Comparison.objects.bulk_create(new, ignore_conflicts=True)
    return Comparison.objects.filter(evaluation=evaluation).count()


def left_system(comparison: Comparison, judge: str) -> str:
    """The system shown on the left (A) to this judge: "tuned" or the opponent. `judge` is a
    user's id or an LLM judge's name. A keyed hash, so it cannot be worked out in the browser."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"judge-side:{comparison.key}:{judge}".encode(), hashlib.sha256
    ).digest()
    return TUNED if digest[0] & 1 else comparison.opponent


def sides(comparison: Comparison, judge: str) -> tuple[str, str, str]:
    """(text A, text B, system on the left) for this judge."""
    outputs = comparison.sample.outputs
    left = left_system(comparison, judge)
    right = comparison.opponent if left == TUNED else TUNED
    return outputs.get(left) or "", outputs.get(right) or "", left


def judgeable(project: Any) -> QuerySet[Comparison]:
    return Comparison.objects.filter(
        evaluation__run__project=project, evaluation__status=Evaluation.Status.DONE, identical=False
    )


def evaluations_to_judge(project: Any, user: Any) -> list[dict[str, Any]]:
    """Each finished evaluation of the project with its comparisons, how many this user judged,
    and how many still want a judge."""
    rows = []
    evaluations = Evaluation.objects.filter(run__project=project, status=Evaluation.Status.DONE).select_related("run")
    for evaluation in evaluations.order_by("-run__number", "-pk"):
        pairs = judgeable(project).filter(evaluation=evaluation)
        counted = pairs.annotate(n=Count("judgments", filter=Q(judgments__reviewer__isnull=False)))
        rows.append(
            {
                "evaluation": evaluation,
                "pairs": pairs.count(),
                "mine": pairs.filter(judgments__reviewer=user).count(),
                "wanting": counted.filter(n__lt=JUDGES_PER_PAIR).count(),
            }
        )
    return rows


def finished_evaluation(project: Any, raw: str) -> Evaluation:
    """The finished evaluation of the project that a request's `evaluation` parameter names;
    JudgingError on field "evaluation" when it names none."""
    evaluation = (
        Evaluation.objects.filter(pk=raw, run__project=project, status=Evaluation.Status.DONE).first()
        if raw.isdigit()
        else None
    )
    if evaluation is None:
        raise JudgingError("evaluation", _("There is no finished evaluation %(id)s in this project.") % {"id": raw})
    return evaluation


def next_comparison(
    project: Any, user: Any, evaluation: Evaluation | None = None, after: str | None = None
) -> Comparison | None:
    """The next pair for this user: not judged by them, those with fewer than JUDGES_PER_PAIR
    judges first, in key order (random, and the same for every judge, so judges work the same
    pairs first and their agreement can be measured early). `after` (a key: the pair skipped)
    starts the search after it, coming round to the start again."""
    pairs = judgeable(project).exclude(judgments__reviewer=user)
    if evaluation is not None:
        pairs = pairs.filter(evaluation=evaluation)
    pairs = pairs.annotate(n=Count("judgments", filter=Q(judgments__reviewer__isnull=False))).select_related("sample")
    for wanted in (pairs.filter(n__lt=JUDGES_PER_PAIR), pairs):
        if after:
            found = (
                wanted.filter(key__gt=after).order_by("key").first()
                or wanted.exclude(key=after).order_by("key").first()
            )
        else:
            found = wanted.order_by("key").first()
        if found is not None:
            return found
    return pairs.filter(key=after).first() if after else None


# --- Saving a judgment ------------------------------------------------------------------------


def _score(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number not in SCORES:
        raise JudgingError(field, _("Scores go from 1 to 5 (or leave it empty)."))
    return number


def _winner(choice: str, left: str) -> str:
    if choice == Judgment.Choice.TIE:
        return Judgment.Winner.TIE
    tuned_on_left = left == TUNED
    return Judgment.Winner.TUNED if (choice == Judgment.Choice.A) == tuned_on_left else Judgment.Winner.OPPONENT


def judgment_values(
    comparison: Comparison, judge: str, choice: Any, scores: dict[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """Check a choice and rubric given as A/B and turn them into what they mean: {left, choice,
    winner, scores: {criterion: {"tuned": n, "opponent": n}}}. JudgingError names the field
    (`choice`, or `<criterion>_a` / `<criterion>_b`)."""
    choice = str(choice or "").strip().lower()
    if choice not in Judgment.Choice.values:
        raise JudgingError("choice", _("Choose A, B or tie."))
    left = left_system(comparison, judge)
    by_system: dict[str, dict[str, int]] = {}
    for criterion, values in (scores or {}).items():
        if criterion not in CRITERIA:
            raise JudgingError(
                "scores",
                _("There is no criterion %(name)r; the criteria are %(names)s.")
                % {"name": criterion, "names": ", ".join(CRITERIA)},
            )
        values = values or {}
        a = _score(values.get("a"), f"{criterion}_a")
        b = _score(values.get("b"), f"{criterion}_b")
        tuned, opponent = (a, b) if left == TUNED else (b, a)
        scored = {k: v for k, v in (("tuned", tuned), ("opponent", opponent)) if v is not None}
        if scored:
            by_system[criterion] = scored
    return {"left": left, "choice": choice, "winner": _winner(choice, left), "scores": by_system}


def judgment_save(
    *, comparison: Comparison, user: Any, choice: Any, scores: dict[str, dict[str, Any]] | None = None, note: str = ""
) -> Judgment:
    """Save this reviewer's judgment of the pair (a second save replaces their own earlier one)."""
    if comparison.identical:
        raise JudgingError("comparison", _("Both answers are the same text: there is nothing to judge."))
    if comparison.evaluation.status != Evaluation.Status.DONE:
        raise JudgingError("comparison", _("This evaluation is not finished."))
    values = judgment_values(comparison, str(user.pk), choice, scores)
    values["note"] = str(note or "").strip()
    try:
        with transaction.atomic():
            judgment, _created = Judgment.objects.update_or_create(
                comparison=comparison, reviewer=user, defaults=values
            )
    except IntegrityError:  # the same person saved twice at once: keep the one that landed
        judgment = Judgment.objects.get(comparison=comparison, reviewer=user)
    return judgment


def my_judgment(comparison: Comparison, user: Any) -> dict[str, Any] | None:
    """This user's earlier judgment of the pair, as A/B again (to show it back to them)."""
    judgment = Judgment.objects.filter(comparison=comparison, reviewer=user).first()
    if judgment is None:
        return None
    tuned_on_left = judgment.left == TUNED
    scores = {}
    for criterion, values in judgment.scores.items():
        a, b = (values.get("tuned"), values.get("opponent"))
        scores[criterion] = {"a": a, "b": b} if tuned_on_left else {"a": b, "b": a}
    return {"choice": judgment.choice, "scores": scores, "note": judgment.note}


# --- Results ---------------------------------------------------------------------------------


def verdict_text(opponent: str, wins: int, losses: int, ties: int) -> str:
    """stats.verdict in the reader's language: "tuned wins 68% [59, 76] over few-shot base on 80
    judged pairs"."""
    parts = stats.verdict_parts(wins, losses, ties)
    tuned, other = _("tuned model"), opponent_name(opponent)
    if parts is None:
        return _("No judged pairs yet between the tuned model and the %(other)s.") % {"other": other}
    first, second = (other, tuned) if parts["swapped"] else (tuned, other)
    values = {"first": first, "second": second, **parts}
    text = (
        ngettext(
            "%(first)s wins %(rate)s%% [%(low)s, %(high)s] over %(second)s on %(n)s judged pair",
            "%(first)s wins %(rate)s%% [%(low)s, %(high)s] over %(second)s on %(n)s judged pairs",
            parts["n"],
        )
        % values
    )
    if not parts["clear"]:
        text = _("No clear winner: %(text)s") % {"text": text}
    if ties:
        text += " " + ngettext(
            "(%(ties)s tie counted as half a win)", "(%(ties)s ties counted as half a win)", ties
        ) % {"ties": ties}
    return text


def _counts(judgments: Iterable[Judgment]) -> tuple[int, int, int]:
    c = Counter(j.winner for j in judgments)
    return c[Judgment.Winner.TUNED], c[Judgment.Winner.OPPONENT], c[Judgment.Winner.TIE]


def _rate(judgments: list[Judgment]) -> dict[str, Any]:
    wins, losses, ties = _counts(judgments)
    return stats.win_rate(wins, losses, ties)


def _position(judgments: list[Judgment]) -> dict[str, Any]:
    c = Counter(j.choice for j in judgments)
    return stats.position_bias(c[Judgment.Choice.A], c[Judgment.Choice.B], c[Judgment.Choice.TIE])


def _criteria(judgments: list[Judgment]) -> list[dict[str, Any]]:
    rows = []
    for key, name in CRITERIA.items():
        tuned = [j.scores[key]["tuned"] for j in judgments if "tuned" in j.scores.get(key, {})]
        other = [j.scores[key]["opponent"] for j in judgments if "opponent" in j.scores.get(key, {})]
        rows.append(
            {
                "key": key,
                "name": str(name),
                "tuned": sum(tuned) / len(tuned) if tuned else None,
                "opponent": sum(other) / len(other) if other else None,
                "n": max(len(tuned), len(other)),
            }
        )
    return rows


def _grouped(judgments: list[Judgment], attribute: str) -> list[dict[str, Any]]:
    groups: dict[str, list[Judgment]] = defaultdict(list)
    for j in judgments:
        value = getattr(j.comparison.sample, attribute) or ""
        if value:
            groups[value].append(j)
    return [{"value": value, **_rate(members)} for value, members in sorted(groups.items())]


def _majority(winners: list[str]) -> str | None:
    """The winner most judges chose; None when two choices share the most votes."""
    ranked = Counter(winners).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def llm_agreement(human: list[Judgment], llm: list[Judgment]) -> dict[str, Any]:
    """How often the LLM judge picks what the humans' majority picked, on the pairs both judged
    (pairs where the humans are split evenly are left out), with kappa and alpha."""
    by_pair: dict[int, list[str]] = defaultdict(list)
    for j in human:
        by_pair[j.comparison_id].append(j.winner)
    table = {}
    for j in llm:
        majority = _majority(by_pair.get(j.comparison_id, []))
        if majority is not None:
            table[j.comparison_id] = [majority, j.winner]
    return stats.agreement(table)


def judging_results(evaluation: Evaluation) -> dict[str, Any]:
    """Everything the results page shows about the judgments of one evaluation."""
    judgments = list(
        Judgment.objects.filter(comparison__evaluation=evaluation).select_related("comparison", "comparison__sample")
    )
    human = [j for j in judgments if j.reviewer_id]
    llm = [j for j in judgments if not j.reviewer_id]
    pairs = Comparison.objects.filter(evaluation=evaluation)
    result: dict[str, Any] = {
        "judgments": len(human),
        "reviewers": len({j.reviewer_id for j in human}),
        "pairs": pairs.filter(identical=False).count(),
        "identical": pairs.filter(identical=True).count(),
        "position": _position(human),
        "opponents": [],
        "llm_models": sorted({j.judge_model for j in llm}),
    }
    for opponent in OPPONENTS:
        mine = [j for j in human if j.comparison.opponent == opponent]
        theirs = [j for j in llm if j.comparison.opponent == opponent]
        wins, losses, ties = _counts(mine)
        by_pair: dict[int, list[str]] = defaultdict(list)
        for j in mine:
            by_pair[j.comparison_id].append(j.winner)
        result["opponents"].append(
            {
                "opponent": opponent,
                "name": opponent_name(opponent),
                "rate": stats.win_rate(wins, losses, ties),
                "verdict": verdict_text(opponent, wins, losses, ties),
                "criteria": _criteria(mine),
                "agreement": stats.agreement(by_pair),
                "groups": [
                    (_("By label"), _grouped(mine, "label")),
                    (_("By source"), _grouped(mine, "source")),
                ],
                "llm": {
                    "rate": _rate(theirs),
                    "position": _position(theirs),
                    "agreement": llm_agreement(mine, theirs),
                }
                if theirs
                else None,
            }
        )
    return result
