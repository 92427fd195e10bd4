"""One answer as the page shows it: its text, how well it is backed, its sources and pages."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.api_models import AnswerKind, Backing, ClaimOut, NumberedPassage, QueryResult, Support
from ui.backing import claims_numbers_html
from ui.render import (
    answer_html,
    card_anchor,
    escape_markdown,
    page_anchor,
    pages_html,
    passage_highlights,
    source_card_html,
)
from ui.state import Turn


def render_pages(turn: Turn, index: int) -> None:
    if turn.pages:
        st.html(pages_html(index, turn.passages, turn.pages))


def render_answer(turn: Turn, index: int, slot: DeltaGenerator) -> None:
    result = turn.result
    sources = result.sources if result else turn.sources
    if turn.answer:
        slot.html(answer_html(turn.answer, sources, index, on_pages=turn.pages.keys()))
    else:
        slot.empty()
    if result is not None:
        seconds = result.timings.total_ms / 1000
        searched = result.standalone_question
        if searched and searched != turn.question:
            st.caption(f":material/search: Searched as: {escape_markdown(searched)}")
        quoted = result.answer_kind is AnswerKind.QUOTED
        shown_as = "quoted from your documents" if quoted else result.model
        if result.answer_kind is AnswerKind.EVIDENCE:
            shown_as = "unverified evidence"
        st.caption(f"{shown_as} · {seconds:.1f} s")
        if quoted:
            st.caption(
                ":material/format_quote: **Quoted from your documents**: these are the "
                "documents' own sentences, not a written answer."
            )
        if result.grounded:
            support_check(result)
            number_backing(result)
            removed_note(result)
        elif result.not_found_reason:
            st.info(
                "Nothing in your documents matches this question. "
                f"{escape_markdown(result.not_found_reason)}",
                icon=":material/search_off:",
            )
        elif result.answer_kind is AnswerKind.EVIDENCE:
            evidence_note(result)
        else:  # unanswered
            unanswered_note(result)
        cited_sources(turn, result, index)
        return
    if turn.error_code == "generator_unavailable" or (turn.error and turn.sources):
        st.warning(
            f"**The language model is not available right now**, so there is no answer. "
            f"{escape_markdown(turn.error or '')}",
            icon=":material/power_off:",
        )
        if turn.sources:
            st.markdown("**The passages that best match your question:**")
            for passage in turn.sources:
                source_card(passage, turn, index)
        return
    if turn.error:
        st.error(escape_markdown(turn.error), icon=":material/error:")
    elif not turn.finished:
        st.caption("Stopped before the answer was complete.")


def evidence_note(result: QueryResult) -> None:
    """The answer above is the passages' closest sentences, not a checked answer."""
    lines = [
        "**Unverified evidence**: nothing passed the checks as an answer, so these are the "
        "sentences of your documents closest to the question, with their pages. Read them "
        "against their sources."
    ]
    lines += [
        f"- The model's draft, not backed: “{escape_markdown(c.text)}”{unbacked_numbers(c)}"
        for c in result.claims
    ]
    st.warning("\n".join(lines), icon=":material/manage_search:")


def unanswered_note(result: QueryResult) -> None:
    """Why no answer is shown although passages were found, with the model's unbacked draft."""
    lines = [
        "Passages about this were found, but nothing in them backs an answer to the question, "
        "so none is shown. Read the passages below."
    ]
    lines += [
        f"- The model's draft, not backed: “{escape_markdown(c.text)}”{unbacked_numbers(c)}"
        for c in result.claims
    ]
    st.info("\n".join(lines), icon=":material/search_off:")


def unbacked_numbers(claim: ClaimOut) -> str:
    """' (not in the passages, nor computed from them: 16, 64)' for a sentence whose
    numbers stand nowhere, or ''."""
    unbacked = [
        escape_markdown(n.text.strip()) for n in claim.numbers if n.backing is Backing.UNBACKED
    ]
    if not unbacked:
        return ""
    return f" (not in the passages, nor computed from them: {', '.join(unbacked)})"


def backing_label(support: Support) -> str:
    return "Weakly backed" if support is Support.WEAK else "Not backed"


def removed_note(result: QueryResult) -> None:
    """A compact note on the model's sentences left out as not supported, expandable."""
    removed = [c for c in result.claims if not c.shown]
    if not removed:
        return
    with st.expander(f":material/filter_alt: {len(removed)} sentence(s) removed as not backed"):
        for claim in removed:
            st.markdown(
                f"- {backing_label(claim.support)}: “{escape_markdown(claim.text)}”"
                f"{unbacked_numbers(claim)}"
            )


def support_check(result: QueryResult) -> None:
    """How well each sentence of the answer is backed by the passages it cites."""
    claims = [c for c in result.claims if c.shown]
    doubtful = [c for c in claims if c.support is not Support.SUPPORTED]
    if not claims:
        return
    if not doubtful:
        st.caption(
            f":material/verified: Each sentence ({len(claims)}) is backed by the passages it cites."
        )
        return
    backed = len(claims) - len(doubtful)
    lines = [f"**{backed} of {len(claims)} sentences are backed by the passages they cite.**"]
    for claim in doubtful:
        lines.append(f"- {backing_label(claim.support)}: “{escape_markdown(claim.text)}”")
    st.warning("\n".join(lines), icon=":material/fact_check:")


def number_backing(result: QueryResult) -> None:
    """Beside the answer's sentences, how each of their numbers is backed: the cell it
    stands in, or its derivation with the cells' values and pages. Open when a number is
    computed or not backed; a number that simply stands is one click away."""
    claims = [(c.text, c.numbers) for c in result.claims if c.shown and c.numbers]
    if not claims:
        return
    checks = [n for _, numbers in claims for n in numbers]
    notable = any(n.backing is not Backing.STANDS for n in checks)
    label = f":material/calculate: How the answer's numbers are backed ({len(checks)})"
    with st.expander(label, expanded=notable):
        st.html(claims_numbers_html(claims, result.sources))


def cited_sources(turn: Turn, result: QueryResult, index: int) -> None:
    sources = result.sources
    if not sources:
        st.info("No passage of your documents matched this question.", icon=":material/search_off:")
        return
    cited = result.citations
    if cited:
        st.markdown(f"**Sources** · {len(cited)} cited")
        for passage in cited:
            source_card(passage, turn, index)
    elif result.grounded:  # (an ungrounded answer was already explained)
        st.info(
            "The answer cites no passage: check it against the passages below.",
            icon=":material/help:",
        )
    if result.invalid_citations:
        numbers = ", ".join(f"[{n}]" for n in result.invalid_citations)
        st.caption(f":material/warning: The model cited {numbers}, which it was not given.")
    with st.expander(f"All {len(sources)} passages given to the model", expanded=not cited):
        for passage in sources:
            source_card(passage, turn, index, anchor=not cited)


def source_card(passage: NumberedPassage, turn: Turn, index: int, *, anchor: bool = True) -> None:
    spans = passage_highlights(passage, turn.question, turn.answer)
    page_link = page_anchor(index, passage.n) if passage.n in turn.pages else None
    st.html(
        source_card_html(
            passage, spans, card_anchor(index, passage.n) if anchor else None, page_link
        )
    )
