from core.settings import load_settings
from rag.conversation import Turn
from rag.fakes import ScriptedGenerator
from rag.followup import (
    AsAsked,
    AutoRewriter,
    KeywordRewriter,
    LlmRewriter,
    is_follow_up,
    make_rewriter,
    rewrite_messages,
)

GPU_QUESTION = "How many P100 GPUs were used to train the big model?"
FOLLOW_UP = "How long did its training take?"
HISTORY = [Turn(GPU_QUESTION, GPU_QUESTION, "The big model was trained on 8 P100 GPUs [1].")]


async def test_keywords_carry_the_previous_topic_into_a_follow_up() -> None:
    rewritten = await KeywordRewriter().rewrite(FOLLOW_UP, HISTORY)
    assert rewritten == "How long did its training take? (P100 GPUs, train, big model)"


async def test_keywords_leave_standalone_questions_and_first_questions_alone() -> None:
    standalone = "What BLEU score did the Transformer reach on English-to-German?"
    assert await KeywordRewriter().rewrite(standalone, HISTORY) == standalone
    assert await KeywordRewriter().rewrite(FOLLOW_UP, []) == FOLLOW_UP


def test_follow_ups_are_recognised() -> None:
    assert is_follow_up("What is it?")
    assert is_follow_up("And the small one?")  # too few content words to name a topic
    assert not is_follow_up("What optimizer trained the Transformer base model?")


async def test_llm_rewrite_is_used_when_it_is_a_question() -> None:
    generator = ScriptedGenerator("Rewritten question: How long did training the big model take?")
    rewritten = await LlmRewriter(generator).rewrite(FOLLOW_UP, HISTORY)
    assert rewritten == "How long did training the big model take?"
    prompt = generator.prompts[0][-1]["content"]
    assert "Question: " + GPU_QUESTION in prompt and prompt.endswith(FOLLOW_UP)
    assert "[1]" not in prompt  # earlier citation markers mean nothing here


async def test_llm_answer_instead_of_a_question_falls_back_to_keywords() -> None:
    rewriter = LlmRewriter(ScriptedGenerator("The training took 3.5 days."))
    rewritten = await rewriter.rewrite(FOLLOW_UP, HISTORY)
    assert rewritten == await KeywordRewriter().rewrite(FOLLOW_UP, HISTORY)


async def test_llm_down_falls_back_to_keywords() -> None:
    down = ScriptedGenerator("unused")
    down.available = False
    rewriter = LlmRewriter(down)
    assert "(P100 GPUs, train, big model)" in await rewriter.rewrite(FOLLOW_UP, HISTORY)


async def test_auto_uses_keywords_for_the_tiny_embedded_model() -> None:
    tiny = ScriptedGenerator(
        "How long did training the big model take?", model="SmolLM2-135M-Instruct"
    )
    assert "(P100 GPUs" in await AutoRewriter(tiny).rewrite(FOLLOW_UP, HISTORY)
    assert tiny.prompts == []
    capable = ScriptedGenerator("How long did training the big model take?")
    assert await AutoRewriter(capable).rewrite(FOLLOW_UP, HISTORY) == (
        "How long did training the big model take?"
    )


def test_the_setting_picks_the_rewriter() -> None:
    generator = ScriptedGenerator("")
    kinds = {
        mode: type(make_rewriter(load_settings(followup_rewrite=mode), generator))
        for mode in ("auto", "llm", "keywords", "off")
    }
    assert kinds == {
        "auto": AutoRewriter,
        "llm": LlmRewriter,
        "keywords": KeywordRewriter,
        "off": AsAsked,
    }


def test_rewrite_prompt_is_fixed_up_to_the_conversation() -> None:
    first = rewrite_messages(FOLLOW_UP, HISTORY)
    second = rewrite_messages("What is it?", HISTORY)
    assert first[:-1] == second[:-1]
