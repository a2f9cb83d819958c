"""voice-skill: an offline bedside voice skill that answers with a question or a tip."""

__version__ = "0.1.0"
