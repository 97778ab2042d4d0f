"""Wiring of the worker for `smart-router worker`: settings, clients, engine, logging."""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from batch_worker.progress import LogProgress, ProgressSink, RichProgress, configure_logging
from batch_worker.queue import WorkQueue
from batch_worker.settings import WorkerSettings
from batch_worker.spot import ImdsClient
from batch_worker.worker import Worker, WorkerDeps
from notifications import build_notifier
from transcript_contracts.settings import load_settings
from transcript_store import TranscriptStore

logger = logging.getLogger(__name__)

# The model cannot be had (registry download or verification, or loading): sysexits' EX_CONFIG.
EXIT_MODEL_LOAD_FAILED = 78


def run_worker(overrides: dict[str, Any] | None = None) -> int:
    """Load settings (SettingsError names what is wrong), the engine once, then drain."""
    import boto3
    from botocore.config import Config

    from chunk_job.fetch import s3_config
    from model_registry.resolve import LOAD_FAILED_MESSAGE, fetch_if_registry
    from whisper_engine.errors import WhisperEngineError
    from whisper_engine.model import default_model_dir
    from whisper_engine.transcriber import EngineOptions, WhisperEngine

    settings = load_settings(WorkerSettings, **(overrides or {}))
    terminal = sys.stderr.isatty()
    configure_logging(settings.log_level, sys.stderr, rich_terminal=terminal)
    # Standard retries with explicit timeouts; the long poll needs a read timeout above 20 s.
    config = Config(
        connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"}
    )
    # As the server's: S3 connect and read timeouts within FETCH_TIMEOUT_S, so one stalled
    # request cannot outlast the chunk job's overall fetch deadline by minutes.
    s3 = boto3.client("s3", config=s3_config(settings.fetch_timeout_s))
    sqs = boto3.client("sqs", config=config)
    # Before the first receive: a model that cannot be had leaves the queue untouched.
    try:
        local = fetch_if_registry(settings.model_id, settings.model_cache_dir, s3=s3)
        model = str(local.path) if local else settings.model_id or str(default_model_dir())
        engine = WhisperEngine.load(
            model,
            device=settings.device,
            compute_type=settings.compute_type,
            options=EngineOptions(
                default_language=settings.language, batch_size=settings.batch_size
            ),
        )
    except (WhisperEngineError, OSError) as exc:
        logger.error("%s: %s", LOAD_FAILED_MESSAGE, exc)
        return EXIT_MODEL_LOAD_FAILED
    model_version = local.version if local else None
    logger.info(
        "model loaded",
        extra={"model": engine.model_name, "model_version": model_version, "device": engine.device},
    )
    # Webhooks go out on their own threads: a slow receiver never holds up the queue.
    deliveries = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify")
    notifier = build_notifier(
        settings,
        bucket=settings.bucket_name,
        layout=settings.layout,
        s3=s3,
        events=lambda: boto3.client("events", config=config),
        ssm=lambda: boto3.client("ssm", config=config),
        executor=deliveries,
    )
    deps = WorkerDeps(
        settings=settings,
        queue=WorkQueue(sqs, settings.queue_url),
        s3=s3,
        engine=engine,
        store=TranscriptStore(s3),
        events=notifier,
        model_version=model_version,
    )
    progress: ProgressSink = RichProgress() if terminal else LogProgress()
    imds = ImdsClient(settings.imds_url) if settings.imds_enabled else None
    worker = Worker(deps, progress=progress, imds=imds)
    worker.install_signal_handlers()
    try:
        return worker.run()
    finally:
        engine.unload()
        notifier.wait_for_deliveries(timeout_s=settings.stop_grace_s)
        deliveries.shutdown(wait=False, cancel_futures=True)
