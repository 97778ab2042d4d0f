"""Typed errors of the midnight launcher. Raising one fails the invocation: Lambda retries it
(EventInvokeConfig) and then hands it to the launcher's dead-letter queue.

LauncherError
├── InvalidLaunchEventError  the payload is not a launcher request
├── QueueDepthError          SQS could not say whether there is work
├── InstanceLookupError      EC2 could not say whether a batch instance runs
├── LaunchConfigError        EC2 refused a launch for a reason other than capacity
└── NoCapacityError          every type x subnet x market answered "no capacity"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from launcher.launch import LaunchAttempt


class LauncherError(Exception):
    """Base of every error the launcher raises on purpose."""


class InvalidLaunchEventError(LauncherError):
    """The invocation payload is not a launcher request."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a launcher request: {reason}")


class QueueDepthError(LauncherError):
    """SQS GetQueueAttributes failed: the launcher cannot tell whether there is work."""


class InstanceLookupError(LauncherError):
    """EC2 DescribeInstances failed: the launcher cannot tell whether a worker is running."""


class LaunchConfigError(LauncherError):
    """EC2 refused a launch for a reason other than capacity (permissions, bad template, ...):
    trying other types or subnets would not help."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"RunInstances failed ({code}): {message}")


class NoCapacityError(LauncherError):
    """Every candidate (type x subnet x market) answered with a capacity error; nothing was
    launched. Raised so Lambda retries the invocation later."""

    def __init__(self, attempts: Sequence[LaunchAttempt]) -> None:
        self.attempts = tuple(attempts)
        tried = ", ".join(f"{a.candidate.describe()}: {a.error_code}" for a in attempts)
        super().__init__(f"no capacity for a batch instance ({tried})")
