"""The program's persistent settings (QSettings in an INI file under the user's config folder)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANIZATION = "NetDesigner"
APPLICATION = "Net Designer"


def settings() -> QSettings:
    """The settings store. Tests redirect it with ``QSettings.setPath`` for the INI format."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_bool(key: str, default: bool = False) -> bool:
    value = settings().value(key, default)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)
