"""The streaming recognizer interface every engine implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

SAMPLE_RATE = 16000  # what every recognizer is fed: 16 kHz mono signed 16-bit


@dataclass(frozen=True)
class Heard:
    """One recognition result.

    text: the recognized sentence (a trigger phrase, a decoy, or other speech).
    utterance: counter of the utterance it belongs to (for once-per-utterance firing).
    at: seconds into the audio stream when the result was produced.
    start/end: where the speech was, in stream seconds (end is None for partials).
    """

    text: str
    utterance: int
    at: float
    confidence: float = 1.0
    final: bool = True
    start: float | None = None
    end: float | None = None
    words: tuple[tuple[str, float], ...] = field(default=())


class Recognizer(Protocol):
    name: str

    def feed(self, pcm: bytes) -> list[Heard]:
        """Feed 16 kHz mono int16 PCM; returns zero or more results."""

    def finish(self) -> list[Heard]:
        """End of stream: flush what is pending."""

    def reset(self) -> None:
        """Drop the current utterance (for example while the skill is speaking)."""
