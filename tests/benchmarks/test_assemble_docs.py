"""The figures a reader sees come from the results files: docs/benchmarks.md and README."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from benchmarks import assemble_docs
from benchmarks.results import Figure, read_runs, write_results

FIGURE = Figure(
    "Retrieval", "COVID-QA hit@5", 0.713, baseline="LangChain", baseline_value=0.5, headline=True
)


def test_generated_files_are_up_to_date() -> None:
    assert assemble_docs.main(["--check"]) == 0


def test_a_new_run_changes_the_readme_figure(tmp_path: Path) -> None:
    report = tmp_path / "retrieval.md"
    write_results(report, [FIGURE], command="cmd", machine="m")
    before = assemble_docs.with_readme_block(
        assemble_docs.README.read_text(encoding="utf-8"), read_runs(tmp_path / "results")
    )
    write_results(report, [replace(FIGURE, value=0.75)], command="cmd", machine="m")
    after = assemble_docs.with_readme_block(before, read_runs(tmp_path / "results"))
    assert ("**0.713**" in before, "**0.750**" in after, "**0.713**" in after) == (
        True,
        True,
        False,
    )


def test_section_titles_are_unique_and_dated() -> None:
    """Every section after the generated table of current figures."""
    titles = re.findall(r"^## (.+)$", assemble_docs.assembled(), flags=re.MULTILINE)[1:]
    undated = [title for title in titles if not re.search(r"\d{4}-\d{2}-\d{2}", title)]
    assert (len(titles) == len(set(titles)), undated) == (True, [])


def test_the_runs_wall_times_are_summed_under_the_table(tmp_path: Path) -> None:
    write_results(tmp_path / "retrieval.md", [FIGURE], command="cmd", machine="m")
    (run,) = read_runs(tmp_path / "results")
    runs = [replace(run, wall_s=3000.0), replace(run, wall_s=1800.0), replace(run, wall_s=None)]
    assert "table: 1 h 20 min, summed over the 2 of 3 runs" in assemble_docs.wall_time_line(runs)
