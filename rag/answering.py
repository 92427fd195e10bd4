"""The answer service: a question in a session -> follow-up rewrite -> retrieval -> the
answer mode's events, with the settings' defaults, the answer recorded in the session's
conversation. The one path for the API, the CLI and the benchmarks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from core.settings import AnswerMode, Settings
from rag import answer_modes
from rag.answer import Answer, AnswerEngine, AnswerEvent, AnswerRequest, DoneEvent
from rag.conversation import CitedPage, Turn, latest
from rag.followup import QuestionRewriter
from rag.retrieval import Hit
from rag.sessions import Session


@dataclass(frozen=True, slots=True)
class AskOptions:
    """How to answer; None takes the setting (top_k, answer_max_tokens, temperature,
    answer_mode).

    ``history``: the earlier turns; None means the session's own conversation, which the
    answer then joins. Given turns (the OpenAI ``messages``, or none) are used as they are
    and nothing is recorded.
    """

    top_k: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    mode: AnswerMode | None = None
    history: Sequence[Turn] | None = None


@dataclass(frozen=True, slots=True)
class Asked:
    """A question searched: as searched, what was found, and the answer's events (lazy:
    nothing is generated until they are read)."""

    standalone: str
    hits: list[Hit]
    events: AsyncIterator[AnswerEvent]


def answer_request(
    settings: Settings,
    question: str,
    hits: Sequence[Hit],
    options: AskOptions = AskOptions(),
    *,
    retrieval_ms: float = 0.0,
    history: Sequence[Turn] = (),
    standalone: str | None = None,
) -> AnswerRequest:
    """The request for an answer mode, with the settings' defaults where ``options`` has
    none: the one place settings become an answer's parameters (the service and the
    benchmarks that replay a mode's strategy both build it here)."""
    return AnswerRequest(
        question,
        hits,
        max_tokens=options.max_tokens or settings.answer_max_tokens,
        temperature=settings.temperature if options.temperature is None else options.temperature,
        mode=options.mode or settings.answer_mode,
        retrieval_ms=retrieval_ms,
        history=history,
        standalone=standalone,
        auto_order=settings.auto_order,
    )


class AnswerService:
    def __init__(self, settings: Settings, engine: AnswerEngine, rewriter: QuestionRewriter):
        self.settings = settings
        self.engine = engine
        self.rewriter = rewriter

    async def search(self, session: Session, query: str, top_k: int | None = None) -> list[Hit]:
        """The best passages for ``query`` as written (no rewrite, no answer)."""
        hits, _ = await self.engine.retrieve(
            session,
            query,
            top_k=top_k or self.settings.top_k,
            score_threshold=self.settings.score_threshold,
        )
        return hits

    async def ask(
        self, session: Session, question: str, options: AskOptions = AskOptions()
    ) -> Asked:
        """Rewrite a follow-up, retrieve, and set up the answer's events."""
        settings = self.settings
        recorded = options.history is None
        history = session.conversation.turns() if options.history is None else options.history
        standalone = await self.rewriter.rewrite(question, history)
        hits, retrieval_ms = await self.engine.retrieve(
            session,
            standalone,
            top_k=options.top_k or settings.top_k,
            score_threshold=settings.score_threshold,
        )
        request = answer_request(
            settings,
            question,
            hits,
            options,
            retrieval_ms=retrieval_ms,
            history=latest(history, settings.conversation_prompt_turns),
            standalone=standalone,
        )
        events = answer_modes.answer(self.engine, request)
        if recorded:
            events = self._recorded(events, session, question, standalone)
        return Asked(standalone, hits, events)

    @staticmethod
    async def _recorded(
        events: AsyncIterator[AnswerEvent], session: Session, question: str, standalone: str
    ) -> AsyncIterator[AnswerEvent]:
        """The events, with the finished answer added to the session's conversation."""
        async for event in events:
            if isinstance(event, DoneEvent):
                session.conversation.add(turn(question, standalone, event.answer))
            yield event


def turn(question: str, standalone_question: str, answer: Answer) -> Turn:
    """The turn a session's conversation keeps: the answer as shown, its cited pages."""
    cited = dict.fromkeys(
        CitedPage(c.hit.chunk.filename, c.hit.chunk.page, c.hit.chunk.page_end)
        for c in answer.citations
    )
    return Turn(question, standalone_question, answer.text, tuple(cited))


async def last_answer(events: AsyncIterator[AnswerEvent]) -> Answer:
    """The final answer. The stream is read to its end (the DoneEvent is its last event)
    so that its generators finish now and release what they hold, such as earlier turns."""
    answer: Answer | None = None
    async for event in events:
        if isinstance(event, DoneEvent):
            answer = event.answer
    if answer is None:
        raise AssertionError("an answer stream always ends with a DoneEvent")
    return answer
