"""The program's persistent settings (QSettings in an INI file under the user's config folder)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

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


#: Overrides where the program keeps its own files (tests point it at a temporary folder).
DATA_ENV = "NET_DESIGNER_DATA"


def data_dir() -> Path:
    """The folder of the program's own files: runs of unsaved projects, recovery files.

    ``$NET_DESIGNER_DATA`` when set, else the platform's application data folder (for example
    ``~/.local/share/NetDesigner/Net Designer`` on Linux).
    """
    override = os.environ.get(DATA_ENV)
    if override:
        path = Path(override)
    else:
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
        path = Path(base or Path.home()) / ORGANIZATION / APPLICATION
    path.mkdir(parents=True, exist_ok=True)
    return path
