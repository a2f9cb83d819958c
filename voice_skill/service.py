"""The systemd user service that keeps the skill running all night (Raspberry Pi).

`voice-skill service install --user` writes ~/.config/systemd/user/voice-skill.service with
ExecStart pointing at this installation's own `voice-skill` script, then tells the user the
systemctl commands to run. Nothing here calls systemctl.

deploy/voice-skill.service in the source tree is the same unit with
ExecStart=/usr/local/bin/voice-skill run, where scripts/install links the command (tests keep
the two in step: the file is shipped_unit_text()).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from voice_skill.errors import UserError

UNIT_NAME = "voice-skill.service"
STATE_SUBDIR = ".local/state/voice-skill"  # relative to the home folder; the only writable place
SHIPPED_EXEC_START = "/usr/local/bin/voice-skill run"  # where scripts/install links it

UNIT_TEMPLATE = """\
# voice-skill: the offline bedside voice skill, as a systemd *user* service.
#
# {origin}
# Enable it (as the user whose microphone and speaker it uses, not root):
#   systemctl --user daemon-reload
#   systemctl --user enable --now voice-skill.service
#   sudo loginctl enable-linger "$USER"    # start at boot, without anyone logging in
# Logs: journalctl --user -u voice-skill -f
#
# Hardening: no network at all (PrivateNetwork, AF_UNIX sockets only), the whole file
# system read-only except the state folder (phrase-bag state, saved voice), no privilege
# gain. Left out on purpose because they break audio: PrivateDevices (hides /dev/snd),
# DeviceAllow/ProtectClock (a device allow-list without ALSA), MemoryDenyWriteExecute
# (ctypes/cffi callbacks of pyttsx3 and sounddevice), PrivateIPC (ALSA dmix/dsnoop share
# SysV memory), RestrictRealtime (audio threads may ask for real-time scheduling).
# PrivateUsers=yes is what lets a user service use that sandboxing at all (systemd 252,
# Raspberry Pi OS 12, does not turn it on by itself); the user's own groups, audio
# included, still apply to /dev/snd, and the sound server's socket under %t is reachable.

[Unit]
Description=voice-skill: offline bedside voice skill (questions and tips)
After=pipewire.service pipewire-pulse.service wireplumber.service pulseaudio.service

[Service]
Type=exec
ExecStartPre=+/bin/mkdir -p %h/.local/state/voice-skill
ExecStart={exec_start}
Restart=on-failure
RestartSec=5
TimeoutStopSec=15
Environment=XDG_STATE_HOME=%h/.local/state PYTHONUNBUFFERED=1

NoNewPrivileges=yes
PrivateUsers=yes
PrivateNetwork=yes
RestrictAddressFamilies=AF_UNIX
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths=%h/.local/state/voice-skill
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0077

[Install]
WantedBy=default.target
"""

_SHIPPED_ORIGIN = (
    "ExecStart is where scripts/install links the command (/usr/local/bin/voice-skill). If\n"
    "# yours is elsewhere (`command -v voice-skill`), let `voice-skill service install --user`\n"
    "# write this file with the right path."
)


def _quote(arg: str) -> str:
    """One ExecStart argument: % and $ escaped, quoted when it holds spaces or quotes."""
    if any(c in arg for c in "\n\r\0"):
        raise UserError(f"{arg!r}: a path with a line break cannot go into a systemd unit; move voice-skill elsewhere")
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c.isspace() or c in "\"'\\;" for c in escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_start(command: Sequence[str | Path], run_args: Sequence[str] = ()) -> str:
    """The ExecStart= value for `COMMAND run RUN_ARGS...`; COMMAND[0] must be an absolute path."""
    if not command or not os.path.isabs(str(command[0])):
        raise UserError(f"{command[0] if command else '(nothing)'}: the service needs the absolute path of the voice-skill program")
    return " ".join(_quote(str(a)) for a in [*command, "run", *run_args])


def unit_text(executable: str | Path | Sequence[str | Path], run_args: Sequence[str] = ()) -> str:
    """The unit file text with ExecStart running EXECUTABLE (a path or an argv list) `run`."""
    command = [executable] if isinstance(executable, (str, Path)) else list(executable)
    line = exec_start(command, run_args)
    origin = f"Written by `voice-skill service install --user` for {command[0]}."
    return UNIT_TEMPLATE.format(origin=origin, exec_start=line)


def shipped_unit_text() -> str:
    """deploy/voice-skill.service: ExecStart=/usr/local/bin/voice-skill run."""
    return UNIT_TEMPLATE.format(origin=_SHIPPED_ORIGIN, exec_start=SHIPPED_EXEC_START)


def installed_command() -> list[str]:
    """How this installation is started: its voice-skill script, else `python -m voice_skill`."""
    script = Path(sys.executable).parent / "voice-skill"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("voice-skill")
    if found and os.path.isabs(found):
        return [found]
    return [sys.executable, "-m", "voice_skill"]


def _home() -> Path:
    home = os.environ.get("HOME", "")
    if not home or not os.path.isabs(home):
        raise UserError("HOME is not set (or not an absolute path); run this as the user who will own the service, in a login shell")
    return Path(home)


def user_unit_dir() -> Path:
    """Where systemd --user looks for the user's own units: $XDG_CONFIG_HOME/systemd/user."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else _home() / ".config"
    return base / "systemd" / "user"


def install_user_unit(command: Sequence[str] | None = None, run_args: Sequence[str] = (), out=print) -> Path:
    """Write the user unit (replacing an older one) and tell the user what to run next."""
    text = unit_text(command or installed_command(), run_args)
    folder = user_unit_dir()
    target = folder / UNIT_NAME
    tmp = folder / (UNIT_NAME + ".tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, "utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write {target} ({exc.strerror or exc}); check that {folder} is a folder you can write to") from None
    try:  # the unit also creates it (ExecStartPre); made now so the first start needs nothing
        (_home() / STATE_SUBDIR).mkdir(parents=True, exist_ok=True)
    except (OSError, UserError):
        pass
    out(f"wrote {target}")
    out("now run:")
    out("  systemctl --user daemon-reload")
    out("  systemctl --user enable --now voice-skill.service")
    out('  sudo loginctl enable-linger "$USER"    # so it starts at boot, without logging in')
    out("logs: journalctl --user -u voice-skill -f")
    return target
