"""One sandboxed real deployment (`pgpt vllm` + `pgpt serve`) shared by this folder's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.privacy.servers import LocalStack, Sandbox


@pytest.fixture(scope="package")
def stack_holder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(Sandbox.create(tmp_path_factory.mktemp("sandbox")))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture()
def local_stack(stack_holder: LocalStack) -> LocalStack:
    """The running stack; a test that stopped it (to search the disk) gets it back next time."""
    stack_holder.start()
    return stack_holder
