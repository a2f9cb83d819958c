"""Wall-clock time for the night: the stream clock, times of day, quiet hours.

The skill's own clock is the audio stream (seconds heard so far). What needs the time of
day (quiet hours, the morning, the softer night voice, 30 days for a skipped phrase) maps a
stream time to local wall time with a StreamClock, a plain value: the runner's is started
from the real clock, a test's from any moment it likes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo

TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class StreamClock:
    """Local wall time at each second of the audio stream."""

    started: datetime  # aware: the wall time at stream second 0
    zone: tzinfo | None = None  # None: the system's local time zone (daylight saving included)

    @staticmethod
    def from_now() -> "StreamClock":
        return StreamClock(datetime.now(timezone.utc))

    def local(self, at: float) -> datetime:
        return (self.started + timedelta(seconds=at)).astimezone(self.zone)


def parse_time_of_day(text: object) -> time | None:
    """"06:00" -> time(6, 0); None if it is not a 24-hour HH:MM."""
    if not isinstance(text, str):
        return None
    found = TIME_OF_DAY.match(text.strip())
    return time(int(found.group(1)), int(found.group(2))) if found else None


def next_time_of_day(now: datetime, when: time) -> datetime:
    """The first moment after `now` whose clock shows `when`."""
    candidate = now.replace(hour=when.hour, minute=when.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


def within(now: datetime, start: time, end: time) -> bool:
    """Whether the clock at `now` is in [start, end), a span that may cross midnight."""
    clock = now.time().replace(tzinfo=None)
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end


@dataclass(frozen=True)
class QuietRules:
    """When wake phrases are ignored: after "goodnight" until `morning` (or for `quiet_hours`
    hours when set), and every night from `quiet_from` until `morning` when set."""

    morning: time = time(6, 0)
    quiet_hours: float | None = None
    quiet_from: time | None = None


@dataclass(frozen=True)
class NightVoice:
    """Softer as the night goes on: from `start` until `end` (the morning), answers are said at
    no more than `volume` ([speech] night_volume; None: off)."""

    volume: float | None = None
    start: time = time(23, 0)
    end: time = time(6, 0)

    def volume_at(self, now: datetime, volume: float) -> float:
        if self.volume is None or not within(now, self.start, self.end):
            return volume
        return min(volume, self.volume)
