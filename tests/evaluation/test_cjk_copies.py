"""The evaluate modules are loaded by path, on their own, so they keep a copy of text.cjk's
character classes: each must stay the same as the original."""

from __future__ import annotations

import ast

import pytest

from text import cjk
from training.evaluation.metrics import MODULES_DIR


@pytest.mark.parametrize(("module", "name"), [("bleu", "UNSPACED_CLASS"), ("rouge_l", "CJK_CLASS")])
def test_the_module_copy_of_the_cjk_class_is_text_cjk_s(module: str, name: str) -> None:
    tree = ast.parse((MODULES_DIR / module / f"{module}.py").read_text(encoding="utf-8"))
    (copy,) = (
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets)
    )
    assert copy == getattr(cjk, name)
