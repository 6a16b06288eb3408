"""Read a TOML file with clear errors (run configurations, data recipes, parameter tables)."""
from __future__ import annotations

import tomllib

from ..errors import ConfigError


def load_toml(path: str, what: str = "config file") -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path} not found") from exc
    except IsADirectoryError:
        raise ConfigError(f"{what} {path}: is a directory, expected a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{what} {path}: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path}: not a text file (expected TOML)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path}: not valid TOML ({exc})") from None
