"""GET /health: no key, truthful (P6): 503 while loading, when the model failed, or when busy."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.dependencies import RuntimeDep
from server.runtime import gpu_available
from server.schemas import HealthOut, HealthStatus

router = APIRouter()

HEALTH_PATH = "/health"


@router.get(HEALTH_PATH, response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(rt: RuntimeDep) -> JSONResponse:
    worker = rt.worker
    status: HealthStatus
    detail: str | None
    if worker is not None and worker.alive:
        detail = worker.busy_reason
        status = "busy" if detail else "healthy"
    elif rt.load_error:
        status, detail = "unavailable", rt.load_error
    elif worker is not None:
        status, detail = "unavailable", "inference worker stopped"
    else:
        status, detail = "loading", "the model is loading"
    body = HealthOut(
        status=status,
        model_loaded=rt.engine is not None,
        gpu_available=gpu_available(),
        device=rt.engine.device if rt.engine else None,
        model=rt.engine.model_name if rt.engine else None,
        model_version=rt.model_version,
        memory_usage=rt.memory_usage(),
        queue_depth=worker.depth if worker else 0,
        detail=detail,
    )
    return JSONResponse(body.model_dump(), status_code=200 if status == "healthy" else 503)
