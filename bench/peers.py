"""Two naive peers, written the way a hobbyist would, with the program's JSON event format.

    python3 -m bench.peers kws --input FILE.wav     # PocketSphinx keyphrase spotting
    python3 -m bench.peers lm --input FILE.wav      # full-vocabulary decoding + substring match

Both listen for the wake phrases (intents question and tip) of phrases/triggers.toml and
print {"event": "listening"}, one {"event": "wake", "intent": ..., "at": ...} per detection
and {"event": "done"} on stdout, so the bench measures and scores them exactly like the
program. Neither does noise suppression, decoys or follow-ups: that is the point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

RATE = 16000
KWS_THRESHOLD = 1e-20
KWS_CHUNK_BYTES = 2048  # 64 ms, as in the PocketSphinx keyword-spotting examples
WAKE_INTENTS = ("question", "tip")


@dataclass(frozen=True)
class Trigger:
    phrase: str
    intent: str


def wake_triggers() -> list[Trigger]:
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    return [Trigger(p, intent) for intent in WAKE_INTENTS for p in table.intents[intent]]


def pcm_blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """The WAV file (16 kHz mono, as the corpus writes it) as int16 PCM, streamed."""
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        if f.samplerate != RATE or f.channels != 1:
            raise SystemExit(f"{path}: the peers read 16 kHz mono WAV only")
        for block in f.blocks(blocksize=block_bytes // 2, dtype="int16"):
            yield block.tobytes()


class Events:
    def __init__(self, out=sys.stdout):
        self._out = out
        self.wakes = 0

    def emit(self, event: str, **fields) -> None:
        self._out.write(json.dumps({"event": event, **fields}) + "\n")
        self._out.flush()

    def wake(self, intent: str, at: float) -> None:
        self.wakes += 1
        self.emit("wake", intent=intent, at=round(at, 2))


def run_kws(path: Path, triggers: list[Trigger], events: Events) -> float:
    """Keyphrase search over the whole stream; reset after each hit (the classic example)."""
    from pocketsphinx import Decoder

    intent_of = {t.phrase: t.intent for t in triggers}
    with tempfile.NamedTemporaryFile("w", suffix=".kws", delete=False) as f:
        f.writelines(f"{t.phrase} /{KWS_THRESHOLD:g}/\n" for t in triggers)
    try:
        decoder = Decoder(kws=f.name, loglevel="FATAL")
    finally:
        os.unlink(f.name)
    events.emit("listening", engine="pocketsphinx-kws")
    fed = 0
    decoder.start_utt()
    for pcm in pcm_blocks(path, KWS_CHUNK_BYTES):
        decoder.process_raw(pcm, False, False)
        fed += len(pcm) // 2
        hyp = decoder.hyp()
        if hyp is not None:
            phrase = hyp.hypstr.strip()
            if phrase in intent_of:
                events.wake(intent_of[phrase], fed / RATE)
            decoder.end_utt()
            decoder.start_utt()
    decoder.end_utt()
    return fed / RATE


def first_trigger(text: str, triggers: list[Trigger]) -> Trigger | None:
    padded = f" {text} "
    hits = [(padded.find(f" {t.phrase} "), t) for t in triggers if f" {t.phrase} " in padded]
    return min(hits, key=lambda hit: hit[0])[1] if hits else None


def run_lm(path: Path, triggers: list[Trigger], events: Events) -> float:
    """Voice activity detection cuts utterances; each is decoded with the default LM."""
    from pocketsphinx import Decoder, Endpointer

    endpointer = Endpointer()
    decoder = Decoder(samprate=endpointer.sample_rate, loglevel="FATAL")
    events.emit("listening", engine="pocketsphinx-lm")
    fed = 0

    def finish_utterance() -> None:
        decoder.end_utt()
        hyp = decoder.hyp()
        hit = first_trigger(hyp.hypstr, triggers) if hyp is not None else None
        if hit is not None:
            events.wake(hit.intent, fed / RATE)

    last = b""
    for frame in pcm_blocks(path, endpointer.frame_bytes):
        fed += len(frame) // 2
        if len(frame) < endpointer.frame_bytes:  # the file's last, short frame
            last = frame
            break
        was_in_speech = endpointer.in_speech
        speech = endpointer.process(frame)
        if speech is None:
            continue
        if not was_in_speech:
            decoder.start_utt()
        decoder.process_raw(speech, False, False)
        if not endpointer.in_speech:
            finish_utterance()
    if endpointer.in_speech:
        tail = endpointer.end_stream(last)
        if tail:
            decoder.process_raw(tail, False, False)
        finish_utterance()
    return fed / RATE


PEERS: dict[str, Callable[[Path, list[Trigger], Events], float]] = {"kws": run_kws, "lm": run_lm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--input", type=Path, required=True)
    args = parser.parse_args(argv)
    events = Events()
    seconds = PEERS[args.peer](args.input, wake_triggers(), events)
    events.emit("done", at=round(seconds, 2), wakes=events.wakes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
