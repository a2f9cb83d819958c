"""Where Vosk models live, how one is found, and the download command."""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
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


MODEL_LIST_URL = "https://alphacephei.com/vosk/models/model-list.json"
DOWNLOAD_TIMEOUT = 30.0  # seconds without a byte before giving up


@dataclass(frozen=True)
class ModelEntry:
    name: str
    url: str
    size: int  # bytes of the zip
    size_text: str
    md5: str | None


def _fetch(url: str):
    from urllib.request import urlopen

    return urlopen(url, timeout=DOWNLOAD_TIMEOUT)  # noqa: S310 (https, or a mirror the user named)


def model_list(list_url: str = MODEL_LIST_URL) -> list[ModelEntry]:
    """The published models (Vosk's own list)."""
    with _fetch(list_url) as response:
        data = json.loads(response.read().decode("utf-8"))
    base = list_url.rsplit("/", 1)[0] + "/"
    entries = []
    for item in data:
        if str(item.get("obsolete", "false")).lower() == "true":
            continue
        url = item.get("url") or base + item["name"] + ".zip"
        entries.append(ModelEntry(item["name"], url, int(item.get("size") or 0), str(item.get("size_text") or ""), item.get("md5")))
    return entries


def download_model(name: str, target_dir: Path, list_url: str = MODEL_LIST_URL, progress=sys.stderr) -> Path:
    """Fetch a model into target_dir/name: the name is checked against the published list and
    the size said before anything is written; one progress line; nothing is left behind on
    failure (no partial zip, no half-unpacked or empty folder)."""
    destination = target_dir / name
    if is_model_dir(destination):
        return destination
    offline = (
        f"without a network, download {name}.zip from {MODEL_LIST_PAGE} on another computer and unzip it into {target_dir}"
    )
    try:
        entries = model_list(list_url)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"could not read the list of models ({getattr(exc, 'reason', exc)}); {offline}") from None
    entry = next((e for e in entries if e.name == name), None)
    if entry is None:
        close = difflib.get_close_matches(name, [e.name for e in entries], n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; see {MODEL_LIST_PAGE}"
        raise UserError(f"model download {name}: no model by that name{hint}")
    created = not target_dir.exists()
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the models folder {target_dir} ({exc.strerror}); pass --dir with a writable folder") from None
    print(f"downloading {name} ({entry.size_text or f'{entry.size / 1e6:.0f} MB'}) from {entry.url}", file=progress)
    part = target_dir / f".{name}.zip.part"
    unpacked = target_dir / f".{name}.unpacking"
    try:
        _download(entry, part, progress)
        _unpack(part, unpacked, name)
        (unpacked / name).rename(destination)
    except OSError as exc:
        raise UserError(f"could not download {name} ({getattr(exc, 'reason', None) or exc.strerror or exc}); {offline}") from None
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UserError(f"the download of {name} is damaged ({exc}); run the command again") from None
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(unpacked, ignore_errors=True)
        if created and target_dir.is_dir() and not any(target_dir.iterdir()):
            target_dir.rmdir()
    if not is_model_dir(destination):
        shutil.rmtree(destination, ignore_errors=True)
        raise UserError(f"{name} does not look like a Vosk model after unpacking; check the model name")
    return destination


def _download(entry: ModelEntry, part: Path, progress) -> None:
    digest = hashlib.md5()  # noqa: S324 (the list publishes md5 checksums)
    done = 0
    last_shown = -1
    with _fetch(entry.url) as response, open(part, "wb") as out:
        total = int(response.headers.get("Content-Length") or entry.size or 0)
        while True:
            block = response.read(1 << 16)
            if not block:
                break
            out.write(block)
            digest.update(block)
            done += len(block)
            percent = int(100 * done / total) if total else -1
            if percent != last_shown and (percent % 5 == 0 or progress.isatty()):
                end = "\r" if progress.isatty() else "\n"
                print(f"  {done / 1e6:6.1f} of {total / 1e6:.1f} MB ({percent} %)", end=end, file=progress, flush=True)
                last_shown = percent
    if progress.isatty():
        print(file=progress)
    if total and done != total:
        raise ValueError(f"{done} of {total} bytes arrived")
    if entry.md5 and digest.hexdigest() != entry.md5:
        raise ValueError("its checksum does not match the published one")


def _unpack(archive: Path, folder: Path, name: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.namelist():
            target = (folder / member).resolve()
            if not str(target).startswith(str(folder.resolve()) + os.sep):
                raise ValueError(f"it holds a path outside its folder ({member})")
            if not member.startswith(name + "/"):
                raise ValueError(f"it holds {member}, not a folder named {name}")
        bundle.extractall(folder)
