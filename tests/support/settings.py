"""Every deployable's settings class, from the one registry the CLI's `settings` command uses
(``smart_router.contract_commands.DEPLOYABLE_SETTINGS``), and a clean environment for them."""

from __future__ import annotations

import pytest

from smart_router.contract_commands import DEPLOYABLE_SETTINGS, settings_class
from transcript_contracts.settings import SettingsBase


def all_settings_classes() -> tuple[type[SettingsBase], ...]:
    return tuple(settings_class(name) for name in sorted(DEPLOYABLE_SETTINGS))


def all_setting_names() -> set[str]:
    """Every environment variable some deployable reads (upper case)."""
    return {name.upper() for cls in all_settings_classes() for name in cls.model_fields}


def clear_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of ours from the caller's shell."""
    for name in all_setting_names():
        monkeypatch.delenv(name, raising=False)
