"""Financial measures -> the line items and statements that report what they are made of.

Analysts ask for measures (gross margin, quick ratio, capex, effective tax rate) that a
filing seldom prints under that name: its statements print the inputs ("Gross profit",
"Total current assets", "Purchases of property, plant and equipment") under headings such
as "Consolidated Statements of Cash Flows", which the chunk headers carry. Retrieval
searches with those words added; the LLM still gets the question as asked.

Each entry is the textbook definition of the measure (which statement lines compute it),
written from the definitions, not from benchmark questions; measured on financebench-dev,
which retrieval was tuned on, and on financebench-holdout, which it never was
(docs/benchmarks/retrieval-changes.md).
"""

from __future__ import annotations

import re

_INCOME = "consolidated statements of operations income earnings"
_BALANCE = "consolidated balance sheets"
_CASH_FLOWS = "consolidated statements of cash flows"

# (what the question says, the words the statements use); case-insensitive, whole words.
_MEASURES: tuple[tuple[str, str], ...] = (
    (r"gross (?:profit )?margins?|gross profit", f"gross profit cost of sales revenue {_INCOME}"),
    (
        r"operating (?:profit )?margins?|operating income|operating profit|ebit",
        f"operating income total revenue {_INCOME}",
    ),
    (r"net (?:profit )?margins?|net income|net earnings", f"net income revenue {_INCOME}"),
    (r"ebitda", f"operating income depreciation and amortization {_INCOME}"),
    (
        r"(?:effective )?tax rate",
        f"provision for income taxes income before income taxes effective tax rate {_INCOME}",
    ),
    (
        r"capex|capital expenditures?|capital spending",
        f"purchases of property plant and equipment investing activities {_CASH_FLOWS}",
    ),
    (
        r"free cash ?flows?",
        "net cash provided by operating activities purchases of property plant and equipment "
        + _CASH_FLOWS,
    ),
    (
        r"operating cash ?flows?|cash ?flows? from operations|cash from operations",
        f"net cash provided by operating activities {_CASH_FLOWS}",
    ),
    (r"dividends?|payout ratio", f"cash dividends paid financing activities {_CASH_FLOWS}"),
    (
        r"(?:share |stock )?(?:buy ?backs?|repurchases?)",
        f"repurchases of common stock financing activities {_CASH_FLOWS}",
    ),
    (
        r"quick ratio|acid[- ]test",
        "cash and cash equivalents accounts receivable total current assets "
        f"total current liabilities {_BALANCE}",
    ),
    (
        r"current ratio|working capital",
        f"total current assets total current liabilities {_BALANCE}",
    ),
    (
        r"debt[- ]to[- ](?:equity|capital|assets)|leverage|solvency",
        f"long-term debt total liabilities total equity {_BALANCE}",
    ),
    (
        r"pp&e|ppne|pp and e|fixed assets|property,? plant,? (?:and|&) equipment",
        f"property plant and equipment net {_BALANCE}",
    ),
    (r"inventory turnover|days (?:of )?inventory|dio", f"inventories cost of sales {_BALANCE}"),
    (
        r"(?:accounts )?receivables? turnover|days sales outstanding|dso",
        f"accounts receivable revenue {_BALANCE}",
    ),
    (
        r"(?:accounts )?payables? turnover|days payables? outstanding|dpo",
        f"accounts payable cost of sales {_BALANCE}",
    ),
    (r"cash conversion cycle", f"inventories accounts receivable accounts payable {_BALANCE}"),
    (r"return on (?:total )?assets|roa", f"net income total assets {_BALANCE}"),
    (
        r"return on (?:shareholders'? )?equity|roe",
        f"net income total shareholders equity {_BALANCE}",
    ),
    (
        r"return on (?:invested )?capital|roic",
        f"operating income long-term debt total equity {_BALANCE}",
    ),
    (r"earnings per share|eps", f"earnings per share basic diluted {_INCOME}"),
    (r"(?:revenue|sales) growth|top[- ]line", f"total revenues net sales {_INCOME}"),
    (
        r"interest coverage|times interest earned",
        f"interest expense operating income {_INCOME}",
    ),
    (r"asset turnover", f"total revenues total assets {_BALANCE}"),
    (r"d&a|depreciation and amortization", f"depreciation and amortization {_CASH_FLOWS}"),
    (r"cogs|cost of goods sold", f"cost of sales cost of revenue {_INCOME}"),
    (r"sg&a", f"selling general and administrative expenses {_INCOME}"),
    (r"r&d", f"research and development expense {_INCOME}"),
)
_PATTERNS = tuple(
    (re.compile(rf"(?<![\w&])(?:{pattern})(?![\w&])", re.IGNORECASE), terms)
    for pattern, terms in _MEASURES
)


def measure_terms(question: str) -> list[str]:
    """The statement words for each financial measure ``question`` names, in table order."""
    return [terms for pattern, terms in _PATTERNS if pattern.search(question)]


def with_measure_terms(query: str) -> str:
    """``query`` followed by the statement words of the measures it names (once each)."""
    terms = measure_terms(query)
    if not terms:
        return query
    return " ".join([query, *dict.fromkeys(terms)])
