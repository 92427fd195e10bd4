from rag.conversation import CitedPage, Conversation, Turn


def turn(n: int, answer: str = "An answer.") -> Turn:
    question = f"Question {n}?"
    return Turn(question, question, answer, (CitedPage("f.pdf", n, n),))


def test_past_the_turn_cap_the_oldest_turns_go() -> None:
    conversation = Conversation(max_turns=3, max_chars=10_000)
    for n in range(5):
        conversation.add(turn(n))
    assert [t.question for t in conversation.turns()] == [
        "Question 2?",
        "Question 3?",
        "Question 4?",
    ]
    assert conversation.chars == sum(t.chars for t in conversation.turns())


def test_past_the_character_cap_the_oldest_turns_go() -> None:
    conversation = Conversation(max_turns=100, max_chars=250)
    for n in range(4):
        conversation.add(turn(n, answer="x" * 80))  # 102 characters a turn
    assert [t.question for t in conversation.turns()] == ["Question 2?", "Question 3?"]
    assert conversation.chars == 204


def test_a_turn_longer_than_the_whole_cap_is_kept_trimmed() -> None:
    conversation = Conversation(max_turns=5, max_chars=120)
    conversation.add(turn(0, answer="y" * 500))
    [kept] = conversation.turns()
    assert kept.question == "Question 0?" and kept.answer.endswith(" …")
    assert kept.chars <= 120


def test_last_turns_and_clear() -> None:
    conversation = Conversation(max_turns=10, max_chars=10_000)
    for n in range(4):
        conversation.add(turn(n))
    assert [t.question for t in conversation.turns(last=2)] == ["Question 2?", "Question 3?"]
    assert conversation.turns(last=0) == []
    conversation.clear()
    assert len(conversation) == 0 and conversation.chars == 0
