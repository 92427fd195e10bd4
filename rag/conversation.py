"""A session's conversation: its turns, in memory only, bounded by count and characters."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

TRIMMED_MARK = " …"


@dataclass(frozen=True, slots=True)
class CitedPage:
    """Where a cited passage is: enough to write the citation out, not the passage itself."""

    filename: str
    page: int
    page_end: int


@dataclass(frozen=True, slots=True)
class Turn:
    question: str  # as the person asked it
    standalone_question: str  # what was searched (the question rewritten without its context)
    answer: str  # the answer as shown
    citations: tuple[CitedPage, ...] = ()

    @property
    def chars(self) -> int:
        return len(self.question) + len(self.standalone_question) + len(self.answer)


class Conversation:
    """The most recent turns, oldest first; past either limit the oldest turns go."""

    def __init__(self, *, max_turns: int, max_chars: int) -> None:
        self.max_turns = max_turns
        self.max_chars = max_chars
        self._turns: deque[Turn] = deque()
        self._chars = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._turns)

    @property
    def chars(self) -> int:
        return self._chars

    def add(self, turn: Turn) -> None:
        turn = fit_turn(turn, self.max_chars)
        with self._lock:
            self._turns.append(turn)
            self._chars += turn.chars
            while len(self._turns) > self.max_turns or self._chars > self.max_chars:
                self._chars -= self._turns.popleft().chars

    def turns(self, last: int | None = None) -> list[Turn]:
        """A copy of the turns, oldest first; only the ``last`` ones when given."""
        with self._lock:
            turns = list(self._turns)
        return turns if last is None else latest(turns, last)

    def clear(self) -> None:
        with self._lock:
            self._turns.clear()
            self._chars = 0


def latest(turns: Sequence[Turn], count: int) -> list[Turn]:
    """The last ``count`` turns (none for 0)."""
    return list(turns[len(turns) - count :]) if count > 0 else []


def fit_turn(turn: Turn, max_chars: int) -> Turn:
    """A turn longer than the whole limit keeps its start (answer first, then the questions)."""
    if turn.chars <= max_chars:
        return turn
    third = max_chars // 3
    question = clip(turn.question, third)
    standalone = clip(turn.standalone_question, third)
    answer = clip(turn.answer, max_chars - len(question) - len(standalone))
    return replace(turn, question=question, standalone_question=standalone, answer=answer)


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= len(TRIMMED_MARK):
        return text[:limit]
    return text[: limit - len(TRIMMED_MARK)] + TRIMMED_MARK
