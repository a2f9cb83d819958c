"""A virtual bedroom for live tests: a private PulseAudio server with a null sink.

The sink is the room's air: the skill plays into it, the test plays speech into it with
paplay, and its monitor source is the skill's microphone (sounddevice opens it through
ALSA's `pulse` device). The test records the room with parec to hear what the skill said,
and can pull the skill's microphone out (cut_microphone_of) through the server's command line,
or give it a microphone that is unplugged and plugged in again (USB_MICROPHONE).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 16000
USB_MICROPHONE = "usbmic"  # the pluggable microphone's name, in the sound server and in ALSA
ROOM_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-cli-protocol-unix
load-module module-null-sink sink_name=room rate=16000 channels=1 sink_properties=device.description=Room
set-default-sink room
set-default-source room.monitor
"""


def room_tools_missing() -> str | None:
    for tool in ("pulseaudio", "paplay", "parec", "pactl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
    if not Path("/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so").exists() and not list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_pulse.so")):
        return "the ALSA pulse plugin is not installed (apt-get install libasound2-plugins)"
    return None


class VirtualRoom:
    def __init__(self, base: Path):
        self.base = base
        self.runtime = base / "run"
        self.config = base / "room.pa"
        self.log = base / "pulseaudio.log"
        self._process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        env = os.environ.copy()
        env["XDG_RUNTIME_DIR"] = str(self.runtime)
        env["PULSE_RUNTIME_PATH"] = str(self.runtime / "pulse")
        return env

    def start(self, timeout: float = 15.0) -> None:
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        self.config.write_text(ROOM_CONFIG)
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                ["pulseaudio", "-n", "-F", str(self.config), "--daemonize=no", "--exit-idle-time=-1", "--log-target=stderr", "--use-pid-file=no"],
                env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {self.log.read_text()[-2000:]}")
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("pulseaudio did not start in time")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def command(self, line: str) -> str:
        """One command to the server's command-line interface (what pacmd does; pacmd itself
        wants a session daemon's pid file, which this room has not)."""
        import socket

        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(5)
            connection.connect(str(self.runtime / "pulse" / "cli"))
            connection.sendall(line.encode() + b"\n")
            connection.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
        return answer.decode(errors="replace")

    def cut_microphone_of(self, pid: int) -> int:
        """Kill the recording streams of one process, as if its microphone were unplugged; the
        room (its speaker, the test's recorder) goes on. Returns how many there were."""
        listing = subprocess.run(["pactl", "list", "source-outputs"], env=self.env, capture_output=True, text=True, check=True).stdout
        streams = [block.split()[0] for block in listing.split("Source Output #")[1:] if f'application.process.id = "{pid}"' in block]
        for stream in streams:
            self.command(f"kill-source-output {stream}")
        return len(streams)

    def usb_microphone_for(self, config_home: Path) -> None:
        """Lets a program whose XDG_CONFIG_HOME is `config_home` open the pluggable microphone
        by name (--input-device usbmic): an ALSA device of its own (alsa-lib reads
        $XDG_CONFIG_HOME/alsa/asoundrc) on the sound server's source of that name. PortAudio
        lists it always; opening it fails while it is unplugged."""
        (config_home / "alsa").mkdir(parents=True, exist_ok=True)
        (config_home / "alsa" / "asoundrc").write_text(f'pcm.{USB_MICROPHONE} {{\n    type pulse\n    device "{USB_MICROPHONE}"\n}}\n')

    def plug_in_microphone(self) -> None:
        """A USB microphone plugged in: a source of its own that hears the room's air (a remap
        of room.monitor)."""
        self.command(f"load-module module-remap-source source_name={USB_MICROPHONE} master=room.monitor")

    def unplug_microphone(self, pid: int | None = None) -> None:
        """The USB microphone pulled out: its source goes, and with it the recording streams of
        process `pid` (the sound server would move them to room.monitor; an unplugged device's
        stream ends)."""
        modules = subprocess.run(["pactl", "list", "short", "modules"], env=self.env, capture_output=True, text=True, check=True).stdout
        for line in modules.splitlines():
            index, name, *arguments = line.split("\t")
            if name == "module-remap-source" and f"source_name={USB_MICROPHONE}" in " ".join(arguments):
                self.command(f"unload-module {index}")
        if pid is not None:
            self.cut_microphone_of(pid)

    def play(self, wav: Path) -> None:
        subprocess.run(["paplay", "--device=room", str(wav)], env=self.env, check=True, timeout=60)

    def recorder(self) -> "Recorder":
        return Recorder(self)


class Recorder:
    """Records the room (the sink's monitor) into memory while active."""

    def __init__(self, room: VirtualRoom):
        self._room = room
        self._data = bytearray()
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.started = 0.0

    def __enter__(self) -> "Recorder":
        self._process = subprocess.Popen(
            ["parec", "--device=room.monitor", f"--rate={RATE}", "--channels=1", "--format=s16le", "--raw", "--latency-msec=20"],
            env=self._room.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self

    def _pump(self) -> None:
        while True:
            chunk = self._process.stdout.read(3200)
            if not chunk:
                return
            self._data += chunk

    def __exit__(self, *exc) -> None:
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._thread.join(5)

    @property
    def audio(self) -> np.ndarray:
        usable = len(self._data) - len(self._data) % 2
        return np.frombuffer(bytes(self._data[:usable]), dtype=np.int16).astype(np.float32) / 32768


@dataclass
class SkillProcess:
    """`voice-skill run` listening live in the room, its JSON events collected as they come."""

    process: subprocess.Popen
    events: list[dict] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, room: VirtualRoom, *args: str, env: dict | None = None) -> "SkillProcess":
        # PYTHONFAULTHANDLER: a SIGABRT (see wait_for_exit) prints every thread's stack to stderr.
        env = {**(env or room.env), "PYTHONFAULTHANDLER": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "voice_skill", "run", "--json", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        skill = cls(process)
        threading.Thread(target=skill._read_events, daemon=True).start()
        threading.Thread(target=skill._read_stderr, daemon=True).start()
        skill.wait_for("listening", timeout=30)  # sent once the first audio has arrived
        return skill

    def _read_events(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                event = json.loads(line)
                event["_wall"] = time.monotonic()
                self.events.append(event)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_lines.append(line.rstrip())

    def of(self, kind: str, **match) -> list[dict]:
        return [e for e in self.events if e["event"] == kind and all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20.0, **match) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(kind, **match)
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {count} {kind} event(s) {match} in time; events: {self.events}; stderr: {self.stderr_lines[-10:]}")

    def wait_for_exit(self, timeout: float) -> int:
        """The exit status, or, if it has not ended within `timeout`, an AssertionError holding
        where each of its threads was (it is aborted, and the fault handler prints them)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._end_with(signal.SIGABRT)
            time.sleep(0.2)  # the stderr reader takes the last lines
            stacks = "\n".join(self.stderr_lines[-120:])
            raise AssertionError(f"still running {timeout:g} s later; its threads then:\n{stacks}") from None

    def _end_with(self, signum: int) -> None:
        """Send `signum`; kill the program if it has not ended 5 s later."""
        self.process.send_signal(signum)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int:
        if self.process.poll() is None:
            self._end_with(signal.SIGTERM)
        return self.process.returncode
