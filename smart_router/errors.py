"""Typed errors of the `smart-router` command line and its local pipeline. Each command turns
the ones it expects into a message and an exit status; nothing is swallowed.

SmartRouterError
├── StatusError              S3 or SQS could not be read: `status` gives no guess
├── SessionInputError        a session name or files that cannot be uploaded as a session
└── LocalRunError            the local pipeline (`local`, `chaos`) could not run
    ├── ProcessStartError    a child process exited or did not become ready in time
    └── PipelineTimeoutError the pipeline did not settle within the allowed time
"""

from __future__ import annotations


class SmartRouterError(Exception):
    """Base of every error the command line raises on purpose."""


class StatusError(SmartRouterError):
    """S3 or SQS could not be read: the status would be a guess, so none is given."""


class SessionInputError(SmartRouterError):
    """The given session name or files cannot be uploaded as a session."""


class LocalRunError(SmartRouterError):
    """The local pipeline could not run."""


class ProcessStartError(LocalRunError):
    """A child process exited or did not become ready in time."""


class PipelineTimeoutError(LocalRunError):
    """The pipeline did not settle within the allowed time."""
