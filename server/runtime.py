"""What a running server holds: settings, auth, the engine and its worker, metrics, clients.

The engine is loaded in a background thread started by the app's lifespan, so that /health can
answer "loading" (503) truthfully while the model loads, instead of the port staying closed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from server.auth import ApiKeySource
from server.inference import InferenceWorker, Transcriber
from server.metrics import ServerMetrics
from server.settings import ServerSettings
from server.url_fetch import Resolver, system_resolver
from whisper_engine.errors import WhisperEngineError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

    from server.drainer import Drainer

logger = logging.getLogger(__name__)

EngineLoader = Callable[[ServerSettings], Transcriber]
DrainerFactory = Callable[["Runtime"], "Drainer | None"]


def load_engine(settings: ServerSettings) -> Transcriber:
    """The real engine: MODEL_ID, or the model prepared by `smart-router model prepare`."""
    from whisper_engine.model import default_model_dir
    from whisper_engine.transcriber import EngineOptions, WhisperEngine

    model = settings.model_id or str(default_model_dir())
    return WhisperEngine.load(
        model,
        device=settings.device,
        compute_type=settings.compute_type,
        options=EngineOptions(default_language=settings.language, batch_size=settings.batch_size),
    )


def default_s3_client(settings: ServerSettings) -> S3Client:
    """S3 for input (/transcribe-s3, the drainer) and transcripts: connect and read timeouts
    within FETCH_TIMEOUT_S (the fetch adds its overall deadline)."""
    import boto3

    from chunk_job.fetch import s3_config

    return boto3.client("s3", config=s3_config(settings.fetch_timeout_s))


def default_drainer(runtime: Runtime) -> Drainer | None:
    from server.drainer import build_drainer

    return build_drainer(runtime)


def default_ssm_client() -> SSMClient:
    import boto3

    return boto3.client("ssm")


@dataclass
class Runtime:
    settings: ServerSettings
    engine_loader: EngineLoader = load_engine
    s3_factory: Callable[[ServerSettings], S3Client] = default_s3_client
    # The queue drainer, built once the model is loaded (None: QUEUE_URL unset or switched off).
    drainer_factory: DrainerFactory = default_drainer
    drainer: Drainer | None = None
    ssm_factory: Callable[[], SSMClient] = default_ssm_client
    resolver: Resolver = system_resolver
    url_transport: httpx.BaseTransport | None = None
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    engine: Transcriber | None = None
    worker: InferenceWorker | None = None
    load_error: str | None = None
    # The registry version (v-<hash>) of the loaded model; None for a local directory.
    model_version: str | None = None
    _s3: S3Client | None = None
    _api_key: ApiKeySource | None = None
    _loader: threading.Thread | None = None

    def api_key(self) -> str:
        """The bearer key (API_KEY, or read once from SSM); ServerKeyError when it can't be had."""
        if self._api_key is None:
            self._api_key = ApiKeySource(
                key=self.settings.api_key,
                parameter=self.settings.api_key_parameter,
                ssm=self.ssm_factory,
            )
        return self._api_key.get()

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            self._s3 = self.s3_factory(self.settings)
        return self._s3

    def start(self) -> None:
        self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._loader.start()

    def wait_loaded(self, timeout_s: float) -> bool:
        if self._loader is not None:
            self._loader.join(timeout_s)
        return self.worker is not None

    def _load(self) -> None:
        from model_registry.resolve import LOAD_FAILED_MESSAGE, fetch_if_registry

        started = time.perf_counter()
        try:
            # An s3:// MODEL_ID is downloaded and verified first (docs/model-supply.md).
            local = fetch_if_registry(self.settings.model_id, self.settings.model_cache_dir)
            settings = self.settings
            if local is not None:
                settings = settings.model_copy(update={"model_id": str(local.path)})
            engine = self.engine_loader(settings)
        except (WhisperEngineError, OSError, ValueError, ImportError, RuntimeError) as exc:
            # Any failure to load leaves the server up and /health truthful (503 + reason);
            # the alarm's metric filter matches LOAD_FAILED_MESSAGE.
            self.load_error = f"{LOAD_FAILED_MESSAGE}: {exc}"
            logger.error(self.load_error)
            return
        self.model_version = local.version if local is not None else None
        worker = InferenceWorker(
            engine,
            max_batch=self.settings.batch_max_size,
            max_wait_s=self.settings.batch_max_wait_ms / 1000,
            max_pending=self.settings.max_pending,
            max_decoded_bytes=self.settings.max_decoded_audio_bytes,
            on_batch=self.metrics.batch_size.observe,
        )
        worker.start()
        self.engine = engine
        self.worker = worker
        logger.info(
            "model %s ready on %s in %.2f s",
            engine.model_name,
            engine.device,
            time.perf_counter() - started,
        )
        self._start_drainer()

    def _start_drainer(self) -> None:
        from botocore.exceptions import BotoCoreError

        try:
            self.drainer = self.drainer_factory(self)
        except BotoCoreError as exc:
            # Direct requests are served without it; queued chunks wait for the batch worker.
            logger.error("the queue drainer could not start: %s", exc)
            return
        if self.drainer is not None:
            self.drainer.start()

    def stop(self) -> None:
        if self.drainer is not None:
            # First, while the inference worker can still finish the drainer's batch.
            self.drainer.stop()
            self.drainer = None
        if self.worker is not None:
            self.worker.stop()
        if self.engine is not None:
            self.engine.unload()
        self.worker = None
        self.engine = None

    def memory_usage(self) -> dict[str, int]:
        usage = {"rss_bytes": _rss_bytes()}
        gpu = self.gpu_memory_bytes()
        if gpu is not None:
            usage["gpu_allocated_bytes"] = gpu
        return usage

    def gpu_memory_bytes(self) -> int | None:
        if self.engine is None or not self.engine.device.startswith("cuda"):
            return None
        import torch

        allocated: Any = torch.cuda.memory_allocated()
        return int(allocated)


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")
