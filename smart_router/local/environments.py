"""What the local run's child processes are told: the settings (as environment variables) of
the transcription server and of the batch worker, pointed at the embedded AWS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from smart_router.local.aws import Resources, aws_environment

if TYPE_CHECKING:
    from smart_router.local.pipeline import PipelineConfig


def _engine_env(cfg: PipelineConfig, endpoint_url: str) -> dict[str, str]:
    return {
        **aws_environment(endpoint_url),
        "API_KEY_PARAMETER": cfg.names.api_key_parameter,
        "ALLOWED_BUCKETS": json.dumps([cfg.names.bucket]),
        "MODEL_ID": str(cfg.model_dir),
        "LANGUAGE": cfg.language,
        "DEVICE": "cpu",
        "AUDIO_PREFIX": cfg.names.audio_prefix,
        "TRANSCRIPT_PREFIX": cfg.names.transcript_prefix,
    }


def _queue_rules_env(cfg: PipelineConfig, resources: Resources) -> dict[str, str]:
    """The work queue and how its messages are held and retried: the same for the batch
    worker and the server's drainer."""
    return {
        "QUEUE_URL": resources.queue_url,
        "VISIBILITY_TIMEOUT_S": str(cfg.visibility_timeout_s),
        "HEARTBEAT_INTERVAL_S": str(cfg.heartbeat_interval_s),
        "RETRY_DELAY_S": str(cfg.worker_retry_delay_s),
    }


def server_env(cfg: PipelineConfig, endpoint_url: str, resources: Resources) -> dict[str, str]:
    env = _engine_env(cfg, endpoint_url)
    if not cfg.server_drains:
        # Explicitly off: a QUEUE_URL in the developer's .env must not turn it on here.
        return {**env, "DRAIN_ENABLED": "false"}
    return {
        **env,
        **_queue_rules_env(cfg, resources),
        "DRAIN_ENABLED": "true",
        "DRAIN_WAIT_TIME_S": "1",
    }


def worker_env(cfg: PipelineConfig, endpoint_url: str, resources: Resources) -> dict[str, str]:
    return {
        **_engine_env(cfg, endpoint_url),
        **_queue_rules_env(cfg, resources),
        "BUCKET_NAME": cfg.names.bucket,
        "WAIT_TIME_S": "1",
        "IDLE_EXIT_S": str(cfg.worker_idle_exit_s),
        "SHUTDOWN_ON_EXIT": "false",
        "IMDS_ENABLED": "false",
        **cfg.worker_overrides,
    }
