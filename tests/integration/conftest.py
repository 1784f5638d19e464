"""Fixtures every integration folder uses: one moto server for the whole session (moto's state is global
to the process anyway; each test resets it through the fixture it uses)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sqs_sagemaker_invoker.local.stand_ins import MotoServer

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer(mode="thread").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server, with no resources left from an earlier test."""
    moto_server.reset()
    return moto_server
