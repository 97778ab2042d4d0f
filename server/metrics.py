"""Prometheus metrics of the server, in a registry of its own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "transcription_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "transcription_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "transcription_audio_seconds_total",
            "Seconds of audio transcribed",
            registry=self.registry,
        )
        self.real_time_factor = Histogram(
            "transcription_real_time_factor",
            "Audio seconds per second of processing (higher is faster)",
            buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 200),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "transcription_queue_depth",
            "Transcriptions waiting for or in the model",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "transcription_batch_size",
            "Requests per inference batch",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.decoded_audio_bytes = Gauge(
            "transcription_decoded_audio_bytes",
            "Decoded audio held or reserved by requests in flight (MAX_DECODED_AUDIO_MB bounds it)",
            registry=self.registry,
        )
        self.gpu_memory = Gauge(
            "transcription_gpu_memory_bytes",
            "GPU memory allocated by the model process (0 without a GPU)",
            registry=self.registry,
        )
