"""Tiny models for the trainer tests (other training tests import `chat` and use `tiny_model_dir`).

`tiny_model_dir` and `one_thread` live in tests/conftest.py, for every test folder.
"""

from __future__ import annotations


def chat(i: int) -> list[dict[str, str]]:
    """A small conversation, a little longer for larger `i`, for `TrainExample(messages=chat(i))`."""
    words = " ".join(["very"] * (i % 7))
    return [
        {"role": "user", "content": f"What is {i} plus {i}? Answer {words} briefly."},
        {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
    ]
