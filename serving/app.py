"""The REST API's app: its routers under /v1, /healthz, the error handlers, and the
lifespan that builds the services at start-up and closes them at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from core import api_models as models
from core.errors import GeneratorUnavailableError
from core.settings import Settings, get_settings
from rag.answer_modes import resolved_order
from rag.embedding import Embedder
from rag.generation import Generator, GeneratorStatus
from rag.sessions import SessionStore
from serving.affinity import ReplicaMiddleware
from serving.http_errors import install_error_handlers
from serving.routes import answers, config, documents, openai, sessions
from serving.routes.deps import ERROR_RESPONSES, ServicesDep, require_api_key
from serving.vllm_client import VLLMGenerator
from serving.wiring import build_services

EVICTION_INTERVAL_S = 30.0


async def evict_periodically(store: SessionStore) -> None:
    while True:
        await asyncio.sleep(EVICTION_INTERVAL_S)
        store.evict_expired()


def create_app(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings, embedder=embedder, generator=generator)
        app.state.services = services
        # Start the parser processes now, not on the first upload.
        await asyncio.to_thread(services.parser_pool.warm_up)
        evictor = asyncio.create_task(evict_periodically(services.store))
        try:
            yield
        finally:
            evictor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await evictor
            # Here, not at exit: uvicorn re-raises SIGTERM after shutting down, which ends
            # the process before exit hooks run and would orphan the parser workers.
            await services.aclose()

    app = FastAPI(
        title="PrivateGPT++",
        version="0.1.0",
        summary="Questions answered from your private documents, held in memory only.",
        lifespan=lifespan,
    )
    for routes in (sessions, documents, answers, openai, config):
        app.include_router(
            routes.router,
            prefix="/v1",
            dependencies=[Depends(require_api_key)],
            responses=ERROR_RESPONSES,
        )

    @app.get("/healthz")
    async def healthz(services: ServicesDep) -> models.Health:
        generator = models.GeneratorHealth(status=await services.generator.status())
        if generator.status == GeneratorStatus.READY:
            with contextlib.suppress(GeneratorUnavailableError):
                info = await services.generator.info()
                generator.model, generator.context_length = info.model, info.context_length
        if isinstance(services.generator, VLLMGenerator):
            rate = services.generator.prefill.rate()
            floor = services.settings.generator_min_prefill_tokens_per_s
            generator.prefill_tokens_per_s = None if rate is None else round(rate, 1)
            generator.slow = rate is not None and rate < floor
        e = services.embedder
        return models.Health(
            status="ok",
            generator=generator,
            embedder=models.EmbedderHealth(model=e.name, device=e.device, dtype=e.dtype),
            sessions=len(services.store),
            auto_order=resolved_order(services.settings.auto_order, generator.model),
        )

    install_error_handlers(app)
    app.add_middleware(ReplicaMiddleware, replica_id=settings.replica_id)
    return app
