"""The sidebar below the documents: how answers are made, and the state of the model."""

from __future__ import annotations

from typing import Any, TypeVar

import streamlit as st

from core.api_models import (
    AnswerOptions,
    ClientConfig,
    GeneratorHealth,
    GeneratorStatus,
    Health,
)
from core.settings import AnswerMode
from ui.limits import number_range
from ui.render import escape_markdown

AUTO_ORDER_LABELS = {
    "quotes-first": "Checked (confident quotes, else the model's backed sentences)",
    "model-first": "Checked (the model's backed sentences, else quotes)",
}
# The modes' labels; 'auto' as it is for the embedded model (mode_label: for the served one).
ANSWER_MODES = {
    AnswerMode.AUTO: AUTO_ORDER_LABELS["quotes-first"],
    AnswerMode.EXTRACT: "Quotes only (no model)",
    AnswerMode.GENERATE: "Model's answer as written",
}
GENERATOR_DOWN = {
    GeneratorStatus.STARTING: (
        "The language model is starting: answers work in a minute or two. "
        "Until then, questions show the passages that match best."
    ),
    GeneratorStatus.RESTARTING: (
        "The language model stopped and is being restarted: answers work again in a minute "
        "or two. Your documents and this conversation are kept; until then, questions show "
        "the passages that match best."
    ),
    GeneratorStatus.UNAVAILABLE: (
        "The language model is not reachable, so there are no written answers for now; "
        "questions show the passages that match best."
    ),
}

AUTO_ORDER_NOTES = {
    "quotes-first": "Checked answers quote your documents first (the model is asked when no "
    "quote is confident).",
    "model-first": "Checked answers ask the model first (quotes when none of its sentences "
    "is backed).",
}

Number = TypeVar("Number", int, float)


def within(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(max(value, low), high)


def mode_label(mode: AnswerMode, auto_order: str) -> str:
    """The answer mode's label; 'auto' says what it tries first for the served model."""
    if mode is AnswerMode.AUTO:
        return AUTO_ORDER_LABELS.get(auto_order, ANSWER_MODES[mode])
    return ANSWER_MODES[mode]


def option_slider(
    label: str, field: str, start: float, kind: type[Number], **options: Any
) -> Number:
    """A slider for one of AnswerOptions' numbers (``field``, also its widget key): it spans
    exactly what the API's request model accepts and starts at the server's setting."""
    bounds = number_range(AnswerOptions, field)
    value = st.slider(
        label,
        min_value=kind(bounds[0]),
        max_value=kind(bounds[1]),
        value=kind(within(start, bounds)),
        key=field,
        **options,
    )
    return kind(value)


def answer_settings(config: ClientConfig, auto_order: str) -> AnswerOptions:
    """The answer options chosen here, starting at the server's settings; the sliders span
    exactly what the API's request model accepts."""
    st.header("Answers", divider="gray")
    mode = st.radio(
        "Answer mode",
        options=list(ANSWER_MODES),
        index=list(ANSWER_MODES).index(config.answer_mode),
        format_func=lambda m: mode_label(m, auto_order),
        key="answer_mode",
        help="Checked answers show only sentences backed by your documents; quotes are the "
        "documents' own sentences and need no model.",
    )
    top_k = option_slider(
        "Passages per question",
        "top_k",
        config.top_k,
        int,
        help="How many passages are retrieved and given to the model.",
    )
    max_tokens = option_slider(
        "Answer length (max tokens)", "max_tokens", config.max_tokens, int, step=16
    )
    temperature = option_slider(
        "Temperature",
        "temperature",
        config.temperature,
        float,
        step=0.05,
        help="0 gives the most literal answers; higher values vary the wording.",
    )
    return AnswerOptions(
        top_k=top_k, max_tokens=max_tokens, temperature=temperature, answer_mode=mode
    )


def model_status(status: Health) -> None:
    generator = status.generator
    st.header("Model", divider="gray")
    if generator.status is GeneratorStatus.READY:
        context = generator.context_length
        context_label = f"  \n:gray[{context:,}-token context]" if context else ""
        st.markdown(
            f":green-badge[:material/check: ready] "
            f"**{escape_markdown(generator.model or 'unknown')}**{context_label}"
        )
    elif generator.status in (GeneratorStatus.STARTING, GeneratorStatus.RESTARTING):
        st.markdown(
            f":orange-badge[:material/hourglass_top: {generator.status}] answers work in a minute"
        )
    else:
        st.markdown(":red-badge[:material/power_off: not reachable] passages only")
    prefill_note(generator)
    st.caption(AUTO_ORDER_NOTES.get(status.auto_order, f"Checked answers: {status.auto_order}"))
    st.caption(f"Search: {status.embedder.model} on {status.embedder.device}")


def prefill_note(generator: GeneratorHealth) -> None:
    """How fast the model read its last minute's prompts, and a warning when too slowly."""
    rate = generator.prefill_tokens_per_s
    if generator.slow:
        measured = f" (it reads prompts at {rate:,.0f} tokens/s)" if rate is not None else ""
        st.markdown(
            ":orange-badge[:material/speed: slow] answers take longer than they should on "
            f"this machine{measured}: it is overloaded or misconfigured."
        )
    elif rate is not None:
        st.caption(f"Reads prompts at {rate:,.0f} tokens/s (the last minute's answers)")
