"""The router Lambda's entry point: a thin adapter.

Powertools Logger (correlation id = the S3 object), Metrics (EMF) and Tracer wrap one call:
parse the event at the edge (:mod:`router.s3_event`), hand the object to the app built once per
container (:mod:`router.app`), turn the outcome into metrics and a small JSON result.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from router.app import RouterApp, build_app
from router.routing import RouteOutcome
from router.s3_event import IgnoredEvent, classify
from transcript_contracts.lazy import Lazy
from transcript_contracts.log_safety import cap_secret_bearing_loggers

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE: Final = "router"
DEFAULT_NAMESPACE: Final = "SmartTranscriptionRouter"

# The service name is also this package's logger name: every `logging.getLogger(__name__)` in
# router/ propagates to the Powertools handler and is written as structured JSON.
logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE), service=SERVICE
)
tracer = Tracer(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"transcript_store"})
# botocore's DEBUG logs print whole response bodies, the decrypted SSM SecureString included:
# never below INFO here, whatever LOG_LEVEL says (P16: the key is never logged).
cap_secret_bearing_loggers()


def _build() -> RouterApp:
    app = build_app()
    logger.setLevel(app.deps.settings.log_level)
    return app


# The container's app: settings loaded (failing fast, naming what is missing) and clients
# created on the first invocation, then reused.
_app: Lazy[RouterApp] = Lazy(_build)


def get_app() -> RouterApp:
    return _app()


def set_app(app: RouterApp | None) -> None:
    """Install a prebuilt app (tests, local runs), or None to rebuild from the environment."""
    _app.set(app)


def record_metrics(outcome: RouteOutcome) -> None:
    if outcome.duplicate:
        metrics.add_metric(name="Duplicates", unit=MetricUnit.Count, value=1)
        return
    if outcome.status == "forwarded":
        metrics.add_metric(name="Forwarded", unit=MetricUnit.Count, value=1)
    elif outcome.status == "skipped":
        metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)
    elif outcome.status == "ignored":
        metrics.add_metric(name="Ignored", unit=MetricUnit.Count, value=1)
    elif outcome.status == "manifest_checked":
        metrics.add_metric(name="ManifestsChecked", unit=MetricUnit.Count, value=1)
    elif outcome.status == "queued":
        with single_metric(
            name="Queued",
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace,
            default_dimensions={"service": SERVICE},
        ) as metric:
            metric.add_dimension(name="reason", value=outcome.reason or "unknown")
    if outcome.attempts > 1:
        metrics.add_metric(name="Retries", unit=MetricUnit.Count, value=outcome.attempts - 1)
    if outcome.stitch is not None and outcome.stitch.status == "stitched":
        metrics.add_metric(name="Stitched", unit=MetricUnit.Count, value=1)
    if outcome.stitch_error is not None:
        metrics.add_metric(name="StitchFailed", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = classify(event)
    if isinstance(request, IgnoredEvent):
        logger.warning("event ignored: %s", request.reason)
        outcome = RouteOutcome("ignored", reason=request.reason)
    else:
        logger.set_correlation_id(request.uri)
        logger.append_keys(etag=request.etag, origin=request.origin, event_id=request.event_id)
        tracer.put_annotation(key="object", value=request.uri)
        outcome = get_app().process(request, context)
    record_metrics(outcome)
    return outcome.to_dict()
