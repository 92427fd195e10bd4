"""The FORMATS table: README's list of formats and the loader's dispatch come from it."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.formats import FORMATS, accepted_extensions, format_for, readme_format_list

README = Path(__file__).resolve().parents[2] / "README.md"
_FORMATS_BLOCK = re.compile(r"<!-- formats: begin -->\n(.*?)\n<!-- formats: end -->", re.DOTALL)


def test_readme_lists_the_formats_of_the_table() -> None:
    block = _FORMATS_BLOCK.search(README.read_text(encoding="utf-8"))
    assert block is not None
    assert block.group(1) == readme_format_list()


def test_every_extension_of_the_table_names_its_format() -> None:
    assert all(format_for(extension) is f for f in FORMATS for extension in f.extensions)


def test_accepted_extensions_are_unique_lower_case_with_a_dot() -> None:
    extensions = accepted_extensions()
    assert len(extensions) == len(set(extensions))
    assert all(re.fullmatch(r"\.[a-z]+", extension) for extension in extensions)


def test_every_document_format_has_a_parser() -> None:
    assert all(f.parse is not None for f in FORMATS if f.kind == "document")
