"""Helpers shared by the tests: free ports and the question most of them ask."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"

# The question about attention-is-all-you-need.pdf that most retrieval and answer tests ask,
# and the pages that answer it (section 5.2, "Hardware and Schedule", runs over both).
GPU_QUESTION = "How many P100 GPUs were used to train the big model?"
GPU_ANSWER_PAGES = {7, 8}
# Its follow-up: only the conversation says what "its" is (the answer is on page 7).
FOLLOW_UP_QUESTION = "How long did its training take?"


def free_port() -> int:
    """A loopback port nothing listens on right now (for a server to start on, or to be
    refused at)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
