"""Where Vosk models live, how one is found, and the download command."""

from __future__ import annotations

import logging
from pathlib import Path

from voice_skill.errors import UserError
from voice_skill.settings import data_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL = "vosk-model-small-en-us-0.15"
MODEL_LIST_PAGE = "https://alphacephei.com/vosk/models"


def repo_models_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "models"


def user_models_dir() -> Path:
    return data_dir() / "models"


def models_dirs() -> list[Path]:
    return [repo_models_dir(), user_models_dir()]


def is_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "am").is_dir() or (path / "conf" / "model.conf").is_file())


def find_model(explicit: str | None = None) -> Path | None:
    """The model to use: an explicit path, else the first model in the models folders."""
    if explicit:
        return Path(explicit).expanduser()
    for folder in models_dirs():
        if folder.is_dir():
            for candidate in sorted(folder.iterdir()):
                if is_model_dir(candidate):
                    return candidate
    return None


def download_model(name: str, target_dir: Path) -> Path:
    """Fetch a model with vosk's own downloader (progress on stderr) into target_dir/name."""
    import vosk

    class _Downloader(vosk.Model):
        def __init__(self):  # no model is loaded; only the download helpers are used
            pass

        def __del__(self):
            pass

    destination = target_dir / name
    if is_model_dir(destination):
        return destination
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the models folder {target_dir} ({exc.strerror}); pass --dir with a writable folder") from None
    try:
        _Downloader().download_model(destination)
    except OSError as exc:  # URLError, socket errors, disk full
        partial = Path(str(destination) + ".zip")
        partial.unlink(missing_ok=True)
        raise UserError(
            f"could not download {name} ({getattr(exc, 'reason', exc)}); without a network, download {name}.zip "
            f"from {MODEL_LIST_PAGE} on another computer and unzip it into {target_dir}"
        ) from None
    except Exception as exc:  # a bad zip
        raise UserError(f"the download of {name} is damaged ({exc}); run the command again") from None
    if not is_model_dir(destination):
        raise UserError(f"{destination} does not look like a Vosk model after unpacking; check the model name")
    return destination
