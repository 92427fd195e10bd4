"""The web UI: a thin Streamlit client of the REST API (client, state, rendering and backing,
and the page: page.py with its regions documents, sidebar, check_text, chat and answer_view)."""

from pathlib import Path

# The Streamlit script `pgpt up` runs; found through the package, so it works when installed.
PAGE_PATH = Path(__file__).resolve().with_name("page.py")
