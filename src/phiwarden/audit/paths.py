"""Where the audit trail lives by default, following each platform's conventions.

The database goes to the user data directory; keys and the local witness go elsewhere (configuration
and state directories), so a copy of the data directory carries neither the keys nor the checkpoints
that expose a rewritten log.
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path

APP = "phiwarden"


def _home() -> Path:
    return Path.home()


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "")
    # The XDG spec says relative values are invalid and must be ignored.
    return Path(value) if value and Path(value).is_absolute() else _home() / fallback


def data_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or _home() / "AppData" / "Local") / APP / "data"
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP / "data"
    return _xdg("XDG_DATA_HOME", ".local/share") / APP


def config_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or _home() / "AppData" / "Roaming") / APP
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP / "config"
    return _xdg("XDG_CONFIG_HOME", ".config") / APP


def state_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or _home() / "AppData" / "Local") / APP / "state"
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP / "state"
    return _xdg("XDG_STATE_HOME", ".local/state") / APP


def default_store_url() -> str:
    return f"sqlite:///{(data_dir() / 'audit.db').as_posix()}"


def default_signing_key() -> Path:
    return config_dir() / "keys" / "audit-signing.key"


def default_hmac_key() -> Path:
    return config_dir() / "keys" / "audit-hmac.key"


def default_witness() -> Path:
    return state_dir() / "witness" / "checkpoints.jsonl"


def create_private_database(path: Path) -> None:
    """Create a new SQLite database file (and its directories) readable by its owner only: it holds
    who sent what where (user ids, file paths, value HMACs). SQLite gives the -wal and -shm files it
    creates beside it the database file's mode; an existing file keeps the mode it has."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
