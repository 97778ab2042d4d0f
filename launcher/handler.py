"""The launcher Lambda's entry point: a thin adapter (template.yaml ``LauncherFunction``).

Powertools Logger and Metrics (EMF) wrap one call: parse the payload
(:func:`launcher.request.parse_request`), run the launcher with clients built once per
container, record metrics and return the outcome as JSON. Errors are raised, never swallowed:
Lambda retries the asynchronous invocation (EventInvokeConfig) and then hands it to the
launcher's dead-letter queue.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from launcher.errors import NoCapacityError
from launcher.launch import LauncherDeps, LaunchOutcome, build_deps, run_launcher
from launcher.request import parse_request
from launcher.settings import LauncherSettings
from transcript_contracts.lazy import Lazy
from transcript_contracts.log_safety import cap_secret_bearing_loggers
from transcript_contracts.settings import load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE: Final = "launcher"
DEFAULT_NAMESPACE: Final = "SmartTranscriptionRouter"

logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE), service=SERVICE
)
# The launcher reads no secret, but LOG_LEVEL=DEBUG must not make botocore print bodies (P16).
cap_secret_bearing_loggers()


def _build() -> LauncherDeps:
    settings = load_settings(LauncherSettings)
    logger.setLevel(settings.log_level)
    return build_deps(settings)


# The container's settings (failing fast, naming what is missing) and clients, built on the
# first invocation.
_deps: Lazy[LauncherDeps] = Lazy(_build)


def get_deps() -> LauncherDeps:
    return _deps()


def set_deps(deps: LauncherDeps | None) -> None:
    """Install prebuilt dependencies (tests, local runs), or None to rebuild from the env."""
    _deps.set(deps)


def record_metrics(outcome: LaunchOutcome) -> None:
    metrics.add_metric(
        name="VisibleMessages", unit=MetricUnit.Count, value=outcome.visible_messages
    )
    metrics.add_metric(name="InstancesLaunched", unit=MetricUnit.Count, value=len(outcome.launched))
    metrics.add_metric(
        name="CapacityErrors", unit=MetricUnit.Count, value=len(outcome.capacity_errors)
    )
    if outcome.shortfall:
        metrics.add_metric(name="LaunchShortfall", unit=MetricUnit.Count, value=outcome.shortfall)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    logger.append_keys(trigger=request.trigger, action=request.action)
    if request.execution_id:
        logger.set_correlation_id(request.execution_id)
    try:
        outcome = run_launcher(request, get_deps())
    except NoCapacityError as exc:
        metrics.add_metric(name="CapacityErrors", unit=MetricUnit.Count, value=len(exc.attempts))
        logger.error("no capacity for a batch instance; Lambda will retry", exc_info=exc)
        raise
    record_metrics(outcome)
    result = outcome.to_dict()
    logger.info("launcher finished: %s", outcome.status, extra={"outcome": result})
    return result
