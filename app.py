"""PrivateGPT++ in the browser: `streamlit run app.py` next to `pgpt serve` (or just `pgpt up`).

The page itself is ui/page.py; this file stays the top-level entry the design names.
"""

from ui.page import main

main()
