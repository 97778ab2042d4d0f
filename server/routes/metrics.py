"""GET /metrics: Prometheus text, behind the key."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.dependencies import Authorized, RuntimeDep

router = APIRouter(dependencies=[Authorized])


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(rt: RuntimeDep) -> Response:
    if rt.worker is not None:
        rt.metrics.queue_depth.set(rt.worker.depth)
        rt.metrics.decoded_audio_bytes.set(rt.worker.budget.used)
    rt.metrics.gpu_memory.set(rt.gpu_memory_bytes() or 0)
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
