"""No log level prints a secret (P16), in any deployable.

botocore logs whole request and response bodies at DEBUG: the decrypted SSM SecureString (the
server's bearer key, the webhook signing key) would be printed by ``smart-router -v`` or
``LOG_LEVEL=DEBUG``. The loggers that can carry bodies are held at INFO or above whatever level
the rest of the program logs at. Each deployable's one logging setup calls
:func:`cap_secret_bearing_loggers` (the CLI, the router and launcher handlers, the worker).
"""

from __future__ import annotations

import logging
from typing import Final

# boto3 and botocore (request/response bodies, signed headers), urllib3 (botocore's transport).
SECRET_BEARING_LOGGERS: Final = ("botocore", "boto3", "urllib3")
FLOOR: Final = logging.INFO


def cap_secret_bearing_loggers() -> None:
    """Raise each secret-bearing logger, and any of its children given a level of its own, to
    at least INFO. A logger already quieter (WARNING) is left quieter."""
    manager = logging.Logger.manager
    names = [
        name
        for name in list(manager.loggerDict)
        if any(name == root or name.startswith(f"{root}.") for root in SECRET_BEARING_LOGGERS)
    ]
    for name in {*SECRET_BEARING_LOGGERS, *names}:
        logger = logging.getLogger(name)
        # NOTSET children inherit the capped level of their parent; only explicit levels below
        # the floor (a DEBUG set by hand or by a library) need raising.
        is_root = name in SECRET_BEARING_LOGGERS
        if logger.level < FLOOR and (is_root or logger.level != logging.NOTSET):
            logger.setLevel(FLOOR)
