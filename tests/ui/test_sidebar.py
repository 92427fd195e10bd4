"""The sidebar's model panel and answer controls, rendered alone from the API's models."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.api_models import EmbedderHealth, GeneratorHealth, Health
from core.settings import AnswerMode
from tests.ui.test_app import texts


# AppTest runs these functions' source as a script: its own imports, no names of ours in
# the annotations.
def model_panel(health: object) -> None:
    from ui.sidebar import model_status

    model_status(health)  # type: ignore[arg-type]


def answer_controls(auto_order: str) -> None:
    from core.api_models import ClientConfig
    from core.settings import AnswerMode
    from ui.sidebar import answer_settings

    config = ClientConfig(
        max_upload_mb=5,
        session_ttl_s=600,
        accepted_extensions=[".pdf"],
        accepted_types="PDF (.pdf)",
        top_k=99,  # beyond the API's limit: the slider starts at its end
        max_tokens=96,
        temperature=0.3,
        answer_mode=AnswerMode.AUTO,
    )
    answer_settings(config, auto_order)


def health(generator: GeneratorHealth, auto_order: str = "quotes-first") -> Health:
    return Health(
        status="ok",
        generator=generator,
        embedder=EmbedderHealth(model="all-MiniLM-L6-v2", device="cpu", dtype="float32"),
        sessions=1,
        auto_order=auto_order,
    )


def rendered(script: object, *args: object) -> AppTest:
    at = AppTest.from_function(script, args=args, default_timeout=30)  # type: ignore[arg-type]
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_slow_model_is_flagged_with_its_prefill_rate() -> None:
    generator = GeneratorHealth(
        status="ready", model="SmolLM2-135M-Instruct", prefill_tokens_per_s=61.5, slow=True
    )
    at = rendered(model_panel, health(generator))
    shown = texts(at.markdown)
    assert ":orange-badge[:material/speed: slow]" in shown
    assert "reads prompts at 62 tokens/s" in shown
    assert "quote your documents first" in texts(at.caption)


def test_a_model_at_speed_states_its_rate_and_the_auto_order() -> None:
    generator = GeneratorHealth(status="ready", model="Qwen2.5-7B", prefill_tokens_per_s=1234.0)
    at = rendered(model_panel, health(generator, "model-first"))
    assert "slow" not in texts(at.markdown)
    captions = texts(at.caption)
    assert "Reads prompts at 1,234 tokens/s" in captions
    assert "ask the model first" in captions


def test_no_rate_is_claimed_before_an_answer_asked_the_model() -> None:
    at = rendered(model_panel, health(GeneratorHealth(status="ready", model="m")))
    assert "tokens/s" not in texts(at.caption) + texts(at.markdown)


def test_the_controls_span_the_api_limits_and_name_auto_by_its_order() -> None:
    at = rendered(answer_controls, "model-first")
    sliders = {s.key: (s.min, s.max, s.value) for s in at.slider}
    assert sliders == {
        "top_k": (1, 20, 20),
        "max_tokens": (16, 4096, 96),
        "temperature": (0.0, 2.0, 0.3),
    }
    assert [type(s.value) for s in at.slider] == [int, int, float]
    assert at.radio(key="answer_mode").value is AnswerMode.AUTO
    assert "the model's backed sentences, else quotes" in at.radio(key="answer_mode").options[0]
