"""Recognizers behind one small streaming interface (see base.py)."""

from voice_skill.recognizers.base import SAMPLE_RATE, Heard, Recognizer

__all__ = ["SAMPLE_RATE", "Heard", "Recognizer"]
