"""Assemble docs/benchmarks.md from the section files each benchmark writes.

Usage: .venv/bin/python -m benchmarks.assemble_docs
"""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTIONS = DOCS / "benchmarks"
# Reading order; any other section file follows alphabetically.
ORDER = [
    "ingest",
    "embedder-backends",
    "ingest-onnx-int8",
    "pdf-text-pdfium",
    "ingest-pdfium",
    "ingest-bomb-check",
    "embedding-batch",
    "ingest-embedding-batch",
    "ingest-openvino",
    "ingest-openvino-widths",
    "ocr",
    "retrieval",
    "retrieval-changes",
    "financebench",
    "financebench-holdout",
    "covidqa-changes",
    "chunk-size-sweep",
    "generation",
    "verifier",
    "answers",
    "answers-extract",
    "quote-confidence",
    "load",
    "soak",
    "shape-memory",
    "a100",
]

HEADER = """# Benchmarks

Measured on this project's CI machine kind: 2 shared CPU cores, 24 GiB RAM, no GPU.
Each section names the exact command that produced it; baselines run side by side in
the same process and run, and the figures to read are the medians and ratios (the
cores are shared, so absolute times move from run to run). Sections live in
`docs/benchmarks/`; this file is assembled by `.venv/bin/python -m benchmarks.assemble_docs`.
"""


def section_files() -> list[Path]:
    files = {path.stem: path for path in SECTIONS.glob("*.md")}
    ordered = [files.pop(name) for name in ORDER if name in files]
    return ordered + [files[name] for name in sorted(files)]


def main() -> None:
    parts = [HEADER]
    parts += [path.read_text(encoding="utf-8").strip() + "\n" for path in section_files()]
    (DOCS / "benchmarks.md").write_text("\n\n".join(parts), encoding="utf-8")
    print(f"wrote {DOCS / 'benchmarks.md'} from {len(parts) - 1} sections")


if __name__ == "__main__":
    main()
