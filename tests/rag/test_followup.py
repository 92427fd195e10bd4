from collections.abc import AsyncIterator, Sequence

from core.errors import GeneratorUnavailableError
from core.settings import load_settings
from rag.conversation import Turn
from rag.followup import (
    AsAsked,
    AutoRewriter,
    KeywordRewriter,
    LlmRewriter,
    is_follow_up,
    make_rewriter,
    rewrite_messages,
)
from rag.generation import GeneratorInfo, GeneratorStatus, Message

GPU_QUESTION = "How many P100 GPUs were used to train the big model?"
FOLLOW_UP = "How long did its training take?"
HISTORY = [Turn(GPU_QUESTION, GPU_QUESTION, "The big model was trained on 8 P100 GPUs [1].")]


class ReplyingGenerator:
    """Replies with a fixed text; records the prompt."""

    def __init__(self, reply: str, model: str = "a-capable-model", up: bool = True) -> None:
        self.reply = reply
        self.model = model
        self.up = up
        self.prompts: list[Sequence[Message]] = []

    async def status(self) -> GeneratorStatus:
        return GeneratorStatus.READY

    async def info(self) -> GeneratorInfo:
        if not self.up:
            raise GeneratorUnavailableError("down")
        return GeneratorInfo(self.model, 4096)

    async def count_tokens(self, messages: Sequence[Message]) -> int:
        return 0

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> AsyncIterator[str]:
        if not self.up:
            raise GeneratorUnavailableError("down")
        self.prompts.append(messages)
        yield self.reply

    async def aclose(self) -> None:
        pass


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
    generator = ReplyingGenerator("Rewritten question: How long did training the big model take?")
    rewritten = await LlmRewriter(generator).rewrite(FOLLOW_UP, HISTORY)
    assert rewritten == "How long did training the big model take?"
    prompt = generator.prompts[0][-1]["content"]
    assert "Question: " + GPU_QUESTION in prompt and prompt.endswith(FOLLOW_UP)
    assert "[1]" not in prompt  # earlier citation markers mean nothing here


async def test_llm_answer_instead_of_a_question_falls_back_to_keywords() -> None:
    rewriter = LlmRewriter(ReplyingGenerator("The training took 3.5 days."))
    rewritten = await rewriter.rewrite(FOLLOW_UP, HISTORY)
    assert rewritten == await KeywordRewriter().rewrite(FOLLOW_UP, HISTORY)


async def test_llm_down_falls_back_to_keywords() -> None:
    rewriter = LlmRewriter(ReplyingGenerator("unused", up=False))
    assert "(P100 GPUs, train, big model)" in await rewriter.rewrite(FOLLOW_UP, HISTORY)


async def test_auto_uses_keywords_for_the_tiny_embedded_model() -> None:
    tiny = ReplyingGenerator("How long did training the big model take?", "SmolLM2-135M-Instruct")
    assert "(P100 GPUs" in await AutoRewriter(tiny).rewrite(FOLLOW_UP, HISTORY)
    assert tiny.prompts == []
    capable = ReplyingGenerator("How long did training the big model take?")
    assert await AutoRewriter(capable).rewrite(FOLLOW_UP, HISTORY) == (
        "How long did training the big model take?"
    )


def test_the_setting_picks_the_rewriter() -> None:
    generator = ReplyingGenerator("")
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
