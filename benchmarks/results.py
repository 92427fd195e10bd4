"""Machine-readable results of one benchmark run, and the table of current figures.

Each benchmark that writes a section `docs/benchmarks/NAME.md` also writes
`docs/benchmarks/results/NAME.json`: the figures a reader may quote, with the date, commit,
command and machine of the run. `benchmarks.assemble_docs` turns every results file into
the one table of current figures at the top of docs/benchmarks.md and into README's
"Measured" block, so a figure is written in one place and a new run changes both.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = PROJECT_ROOT / "docs" / "benchmarks" / "results"
# The table's order of areas; an area not listed follows them.
AREAS = (
    "Ingest",
    "Ingest (in process)",
    "Retrieval",
    "Verifier",
    "Answers",
    "Latency",
    "Generation",
    "OCR",
    "Page view",
    "Load and soak",
    "Scale-out",
)
# A benchmark imports this module as it starts: its wall time runs from here to its results.
_STARTED = time.monotonic()


@dataclass(frozen=True, slots=True)
class Figure:
    """One quotable figure: ours, and the baseline measured beside it in the same run."""

    area: str  # the table's row group, e.g. "Retrieval"
    metric: str  # what was measured, e.g. "COVID-QA hit@5"
    value: float
    unit: str = ""  # "", "pages/s", "ms", "s", ...
    baseline: str = ""  # e.g. "LangChain"; empty when the figure has none
    baseline_value: float | None = None
    higher_is_better: bool = True
    # The run's own ratio when it is not value / baseline_value (a median of paired rounds).
    paired_ratio: float | None = None
    headline: bool = False  # also shown in README's "Measured" block
    digits: int = 3

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline: ours / baseline when higher is better."""
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.baseline_value is None or self.baseline_value == 0 or self.value == 0:
            return None
        if self.higher_is_better:
            return self.value / self.baseline_value
        return self.baseline_value / self.value


@dataclass(frozen=True, slots=True)
class Run:
    """Every figure of one benchmark run and where it came from."""

    section: str  # the section file's stem: docs/benchmarks/<section>.md
    date: str
    commit: str
    command: str
    machine: str
    figures: tuple[Figure, ...] = field(default_factory=tuple)
    wall_s: float | None = None  # the run's wall time (None: written before it was recorded)


class RankedMethod(Protocol):
    """A retrieval benchmark's result for one method."""

    @property
    def name(self) -> str: ...

    def hit_at(self, k: int) -> float: ...


def retrieval_figures(
    results: Sequence[RankedMethod], *, dataset: str, ks: Sequence[int], baseline: str = "langchain"
) -> list[Figure]:
    """hit@k of the first method, beside ``baseline``'s when it ran in the same run."""
    ours, others = results[0], {result.name: result for result in results[1:]}
    compared = others.get(baseline)
    return [
        Figure(
            "Retrieval",
            f"{dataset} hit@{k}",
            ours.hit_at(k),
            baseline="LangChain" if compared is not None else "",
            baseline_value=compared.hit_at(k) if compared is not None else None,
            headline=True,
        )
        for k in ks
    ]


def current_commit() -> str:
    """Short hash of HEAD, marked `+changes` when the code in the work tree differs from it."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        # The docs a run writes (its own section and results) do not make its code differ.
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+changes" if dirty else head


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def results_path(report: Path) -> Path:
    """Where the results of a section written to ``report`` go (beside it, in results/)."""
    return report.parent / "results" / f"{report.stem}.json"


def write_results(
    report: Path | None, figures: Sequence[Figure], *, command: str, machine: str
) -> Path | None:
    """Write the run's results next to its section; nothing when the run writes no section."""
    if report is None:
        return None
    run = Run(
        section=report.stem,
        date=date.today().isoformat(),
        commit=current_commit(),
        command=command,
        machine=machine,
        figures=tuple(figures),
        wall_s=round(time.monotonic() - _STARTED, 1),
    )
    path = results_path(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(run), indent=1) + "\n", encoding="utf-8")
    return path


def read_runs(directory: Path = RESULTS_DIR) -> list[Run]:
    """Every results file in ``directory``, by section name."""
    runs = []
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        figures = tuple(Figure(**figure) for figure in raw.pop("figures"))
        runs.append(Run(**raw, figures=figures))
    return runs


def _number(value: float | None, digits: int, unit: str) -> str:
    if value is None:
        return ""
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".strip()


def _ratio(figure: Figure) -> str:
    ratio = figure.ratio
    return "" if ratio is None else f"{ratio:.2f}x"


def current_table(runs: Sequence[Run], *, link_prefix: str, headline_only: bool = False) -> str:
    """The table of current figures, grouped by area, each with its run's date and commit;
    ``link_prefix`` is the path from the page holding the table to docs/benchmarks/."""
    rows = [
        (figure, run)
        for run in runs
        for figure in run.figures
        if figure.headline or not headline_only
    ]
    # Stable: within an area, rows keep the order of their runs and of each run's figures.
    rows.sort(key=lambda pair: AREAS.index(pair[0].area) if pair[0].area in AREAS else len(AREAS))
    lines = [
        "| area | figure | ours | baseline | ratio | measured | section |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure, run in rows:
        baseline = (
            f"{figure.baseline} {_number(figure.baseline_value, figure.digits, figure.unit)}"
            if figure.baseline
            else ""
        )
        lines.append(
            f"| {figure.area} | {figure.metric} | "
            f"**{_number(figure.value, figure.digits, figure.unit)}** | {baseline.strip()} | "
            f"{_ratio(figure)} | {run.date}, `{run.commit}` | "
            f"[{run.section}]({link_prefix}{run.section}.md) |"
        )
    return "\n".join(lines)
