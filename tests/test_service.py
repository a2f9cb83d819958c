"""The systemd user service: the shipped unit, the generated one, and `service install --user`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from voice_skill.errors import UserError
from voice_skill.service import UNIT_NAME, exec_start, installed_command, shipped_unit_text, unit_text

SHIPPED = REPO / "deploy" / "voice-skill.service"

HARDENING = {
    "NoNewPrivileges": "yes",
    "PrivateUsers": "yes",
    "PrivateNetwork": "yes",
    "RestrictAddressFamilies": "AF_UNIX",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "ReadWritePaths": "%h/.local/state/voice-skill",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "Restart": "on-failure",
}
BREAKS_AUDIO = ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "MemoryDenyWriteExecute", "PrivateIPC", "RestrictRealtime")

requires_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


def directives(text: str) -> dict[str, list[str]]:
    """Section.Key -> values, and Key -> values, of a unit file (comments skipped)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        for name in (key, f"{section}.{key}"):
            found.setdefault(name, []).append(value)
    return found


def verify(unit: Path, home: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """systemd-analyze --user verify, with a throw-away HOME and runtime folder."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime), SYSTEMD_LOG_COLOR="0")
    return subprocess.run(["systemd-analyze", "--user", "verify", str(unit)], capture_output=True, text=True, timeout=60, env=env)


def problems_with(result: subprocess.CompletedProcess, unit: Path) -> list[str]:
    """Lines about our unit: parse warnings make no non-zero exit, so they are read too."""
    lines = [ln for ln in result.stderr.splitlines() if unit.name in ln or str(unit) in ln]
    if result.returncode != 0:
        lines.append(f"exit status {result.returncode}: {result.stderr.strip()}")
    return lines


INSTALLED = "/usr/local/bin/voice-skill"  # where scripts/install links the command


def fake_install(home: Path) -> Path:
    script = home / "bin" / "voice-skill"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return script


def shipped_unit_for(program: Path, tmp_path: Path) -> Path:
    """The shipped unit with its ExecStart program moved to `program` (systemd-analyze wants it to exist)."""
    unit = tmp_path / "shipped" / UNIT_NAME
    unit.parent.mkdir(exist_ok=True)
    unit.write_text(SHIPPED.read_text("utf-8").replace(f"ExecStart={INSTALLED} ", f"ExecStart={program} "))
    return unit


def test_shipped_unit_runs_what_the_install_script_links():
    """One source of truth: the shipped ExecStart is the link scripts/install makes."""
    install = (REPO / "scripts" / "install").read_text("utf-8")
    assert f'ln -sf "$venv/bin/voice-skill" {INSTALLED}' in install
    assert directives(SHIPPED.read_text("utf-8"))["ExecStart"] == [f"{INSTALLED} run"]


def test_shipped_unit_is_the_generated_template():
    assert SHIPPED.read_text("utf-8") == shipped_unit_text(), "regenerate deploy/voice-skill.service from voice_skill.service.shipped_unit_text()"


@pytest.mark.parametrize("text", [shipped_unit_text(), unit_text("/opt/voice skill/bin/voice-skill")], ids=["shipped", "generated"])
def test_hardening_is_there_and_nothing_that_breaks_audio(text):
    found = directives(text)
    for key, value in HARDENING.items():
        assert found.get(key) == [value], (key, found.get(key))
    assert found["RestartSec"] and float(found["RestartSec"][0]) > 0
    assert found["ProtectSystem"] == ["strict"] and found["ReadWritePaths"] == ["%h/.local/state/voice-skill"]
    for key in BREAKS_AUDIO:
        assert key not in found, f"{key} would cut the skill off from its microphone or speaker"
    assert found["Install.WantedBy"] == ["default.target"]
    assert "loginctl enable-linger" in text


def test_exec_start_quotes_spaces_and_escapes_specifiers():
    line = directives(unit_text("/opt/my 100% voice/bin/voice-skill", ["--config", "/home/pi/a b.toml"]))["ExecStart"]
    assert line == ['"/opt/my 100%% voice/bin/voice-skill" run --config "/home/pi/a b.toml"']
    with pytest.raises(UserError, match="absolute path"):
        unit_text("voice-skill")


def test_installed_command_is_this_installation():
    command = installed_command()
    assert os.path.isabs(command[0]) and os.access(command[0], os.X_OK)


@requires_systemd_analyze
def test_shipped_unit_verifies(tmp_path):
    home = tmp_path / "home"
    unit = shipped_unit_for(fake_install(home), tmp_path)
    result = verify(unit, home, tmp_path)
    assert not problems_with(result, unit), result.stderr


@requires_systemd_analyze
def test_verify_would_catch_a_mistake(tmp_path):
    """The check above means something: a typo in the unit is reported."""
    home = tmp_path / "home"
    broken = shipped_unit_for(fake_install(home), tmp_path)
    assert not problems_with(verify(broken, home, tmp_path), broken)
    broken.write_text(broken.read_text("utf-8").replace("PrivateNetwork=yes", "PrivateNetwork=maybe"))
    assert problems_with(verify(broken, home, tmp_path), broken)
    missing = shipped_unit_for(tmp_path / "nowhere" / "voice-skill", tmp_path)
    assert problems_with(verify(missing, home, tmp_path), missing)  # no such program


@requires_systemd_analyze
def test_generated_unit_with_awkward_path_verifies(tmp_path):
    program = tmp_path / "my 100% voice" / "voice-skill"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / UNIT_NAME
    unit.write_text(unit_text(program))
    assert not problems_with(verify(unit, tmp_path, tmp_path), unit)


@requires_systemd_analyze
def test_service_install_user_writes_a_unit_that_verifies(tmp_path, private_dirs, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    result = run_cli("service", "install", "--user")
    assert result.returncode == 0, result.stderr
    unit = Path(private_dirs["XDG_CONFIG_HOME"]) / "systemd" / "user" / UNIT_NAME
    assert unit.is_file() and f"wrote {unit}" in result.stdout
    for command in ("systemctl --user daemon-reload", "systemctl --user enable --now voice-skill.service", "loginctl enable-linger", "journalctl --user -u voice-skill"):
        assert command in result.stdout
    text = unit.read_text("utf-8")
    assert directives(text)["ExecStart"] == [exec_start(installed_command())]
    assert run_cli("service", "show").stdout == text
    assert (home / ".local" / "state" / "voice-skill").is_dir()
    assert not problems_with(verify(unit, home, tmp_path), unit)


def test_service_install_passes_the_config_file(tmp_path, private_dirs):
    config = tmp_path / "my config.toml"
    config.write_text("[speech]\nrate = 120\n")
    assert run_cli("service", "install", "--user", "--config", str(config)).returncode == 0
    text = (Path(private_dirs["XDG_CONFIG_HOME"]) / "systemd" / "user" / UNIT_NAME).read_text()
    assert directives(text)["ExecStart"][0].endswith(f' run --config "{config}"')


def assert_one_error_line(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voice-skill: error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_service_install_bad_input_is_one_clean_line(tmp_path, monkeypatch):
    assert_one_error_line(run_cli("service", "install"), "--user")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("HOME", raising=False)
    assert_one_error_line(run_cli("service", "install", "--user"), "HOME")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    assert_one_error_line(run_cli("service", "install", "--user"), str(blocker / "systemd" / "user"))
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[speech]\nvolume = 7\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert_one_error_line(run_cli("service", "install", "--user", "--config", str(bad_config)), "volume")
    assert not (tmp_path / "config" / "systemd").exists()
