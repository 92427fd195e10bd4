"""`pgpt ask`: one conversation over the files, follow-ups searched with what came before.

Quote mode (extract) answers without an LLM, so this runs the real CLI path end to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from serving.cli import main
from tests.support import FOLLOW_UP_QUESTION, GPU_QUESTION

QUOTING = {"PGPT_ANSWER_MODE": "extract", "PGPT_FOLLOWUP_REWRITE": "keywords"}
# The CLI builds its own services, with the real embedder (quotes are chosen by its vectors).
pytestmark = pytest.mark.embedder


def test_repeated_questions_are_one_conversation(pdf_dir: Path) -> None:
    paper = str(pdf_dir / "attention-is-all-you-need.pdf")
    args = ["ask", paper, "-q", GPU_QUESTION, "-q", FOLLOW_UP_QUESTION]
    result = CliRunner().invoke(main, args, env=QUOTING)
    assert result.exit_code == 0, result.output
    assert f"(searched as: {FOLLOW_UP_QUESTION} (P100 GPUs, train, big model))" in result.output
    assert result.output.count("Quoted from your documents:") == 2


def test_questions_at_the_prompt_until_an_empty_line(pdf_dir: Path) -> None:
    paper = str(pdf_dir / "attention-is-all-you-need.pdf")
    typed = f"{GPU_QUESTION}\n{FOLLOW_UP_QUESTION}\n\n"
    result = CliRunner().invoke(main, ["ask", paper], input=typed, env=QUOTING)
    assert result.exit_code == 0, result.output
    assert f"(searched as: {FOLLOW_UP_QUESTION} (P100 GPUs, train, big model))" in result.output
    assert result.output.count("Quoted from your documents:") == 2
