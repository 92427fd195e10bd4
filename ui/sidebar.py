"""The sidebar below the documents: how answers are made, and the state of the model."""

from __future__ import annotations

import streamlit as st

from core.api_models import AnswerOptions, ClientConfig, GeneratorStatus, Health
from core.settings import AnswerMode
from ui.limits import number_range
from ui.render import escape_markdown

ANSWER_MODES = {
    AnswerMode.AUTO: "Checked (confident quotes, else the model's backed sentences)",
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


def within(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(max(value, low), high)


def answer_settings(config: ClientConfig) -> AnswerOptions:
    """The answer options chosen here, starting at the server's settings; the sliders span
    exactly what the API's request model accepts."""
    st.header("Answers", divider="gray")
    mode = st.radio(
        "Answer mode",
        options=list(ANSWER_MODES),
        index=list(ANSWER_MODES).index(config.answer_mode),
        format_func=ANSWER_MODES.__getitem__,
        key="answer_mode",
        help="Checked answers show only sentences backed by your documents; quotes are the "
        "documents' own sentences and need no model.",
    )
    passages = number_range(AnswerOptions, "top_k")
    top_k = st.slider(
        "Passages per question",
        min_value=int(passages[0]),
        max_value=int(passages[1]),
        value=int(within(config.top_k, passages)),
        key="top_k",
        help="How many passages are retrieved and given to the model.",
    )
    tokens = number_range(AnswerOptions, "max_tokens")
    max_tokens = st.slider(
        "Answer length (max tokens)",
        min_value=int(tokens[0]),
        max_value=int(tokens[1]),
        value=int(within(config.max_tokens, tokens)),
        step=16,
        key="max_tokens",
    )
    temperatures = number_range(AnswerOptions, "temperature")
    temperature = st.slider(
        "Temperature",
        min_value=float(temperatures[0]),
        max_value=float(temperatures[1]),
        value=float(within(config.temperature, temperatures)),
        step=0.05,
        key="temperature",
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
    st.caption(f"Search: {status.embedder.model} on {status.embedder.device}")
