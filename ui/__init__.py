"""The web UI: a thin Streamlit client of the REST API (client, state, rendering, page)."""

from pathlib import Path

# The Streamlit script `pgpt up` runs; found through the package, so it works when installed.
PAGE_PATH = Path(__file__).resolve().with_name("page.py")
