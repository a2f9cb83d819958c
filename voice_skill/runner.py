"""The one place that wires a source, the recognizer, the skill, speech and the speaker.

Data flows one way: audio chunks -> recognizer -> intent matcher -> skill -> actions.
The runner carries out the skill's actions (chime, say, stop) and reports events, either
as human-readable lines or as one JSON object per line (--json).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, TextIO

import numpy as np

from voice_skill.audio import AudioChunk, AudioSource, Playback, Sound, Speaker, chime, lost_sound, ready_sound
from voice_skill.events import Spoken, say_event
from voice_skill.heap import give_back
from voice_skill.intents import Intent, IntentMatcher
from voice_skill.recognizers.base import SAMPLE_RATE, Heard, Recognizer
from voice_skill.memory import Memory
from voice_skill.night import NightVoice
from voice_skill.skill import TIMER, AdjustVoice, Favorite, Forget, Goodnight, Ignored, NextTurn, Say, Skill, StartTimer, StopSpeaking, StopTimer, TimeUp
from voice_skill.speech import SpeechError, Synthesizer, Voice, VoiceStore, adjusted

if TYPE_CHECKING:
    from voice_skill.echo import EchoCanceller

log = logging.getLogger(__name__)

GAP_AFTER_CHIME = 0.15  # seconds of silence between the chime and the answer
PREPARE_EVERY = 60.0  # stream seconds between checks that the answers rendered ahead still fit (night volume)
READY_SOUND_TAIL = 0.3  # seconds of microphone audio after the ready sound that are not heard either (output latency)
SAVED_LINE = "Saved."
GOODNIGHT_LINE = "Goodnight. Sleep well."
TIME_UP_LINE = "Time's up."


@dataclass
class EventWriter:
    """Reports events: JSON lines for tools, short lines for people."""

    out: TextIO = sys.stdout
    as_json: bool = False

    def __call__(self, event: str, **fields) -> None:
        if self.as_json:
            self.out.write(json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
        elif event == "say":
            to = f" (to {fields['to']})" if fields.get("to") else ""
            self.out.write(f"{fields['intent']}{to}: {fields['text']}\n")
        elif event == "wake":
            self.out.write(f"[{fields['at']:.2f}s] heard {fields['intent']}\n")
        elif event == "voice":
            self.out.write(f"voice {fields['change']}: rate {fields['rate']}, volume {fields['volume']}\n")
        elif event in ("listening", "done"):
            self.out.write(f"{event}\n")
        elif event == "timer":
            self.out.write(f"timer: {fields['seconds']} s of quiet\n")
        elif event == "timer_done":
            self.out.write("timer stopped\n" if fields.get("stopped") else "time's up\n")
        elif event == "goodnight":
            self.out.write(f"goodnight: quiet until {fields['quiet_until']}\n")
        elif event in ("skip", "favorite"):
            self.out.write(f"{event}: {fields['id']}\n")
        else:
            return
        self.out.flush()


class SpokenAnswers:
    """Answers spoken through the synthesizer and the speaker: chime, a short gap, then the answer.

    With Piper, `fallback` (pyttsx3) speaks what Piper fails to render; if that fails too,
    the chime alone answers."""

    def __init__(self, synthesizer: Synthesizer, speaker: Speaker, fallback: Synthesizer | None = None):
        self.synthesizer = synthesizer
        self.speaker = speaker
        self.fallback = fallback
        self._speech_failed_logged = False
        self._fallback_logged = False

    def sound_for(self, text: str | None, voice: Voice | None = None) -> Sound:
        """Chime + answer as one sound (in `voice`, else the synthesizer's); if synthesis fails,
        the chime alone (logged once)."""
        return self.answer(text, voice)[0]

    def answer(self, text: str | None, voice: Voice | None = None) -> tuple[Sound, bool]:
        """sound_for(), and whether the speech had been rendered ahead."""
        voice = voice or self.synthesizer.voice
        speech, ahead = None, False
        if text is not None:
            try:
                rendered = self.synthesizer.rendered(text, voice)
                speech, ahead = rendered.sound, rendered.ahead
            except SpeechError as exc:
                speech = self._fall_back(text, voice, exc)
        rate = speech.rate if speech is not None else 22050
        bell = chime(rate, voice.volume).samples
        if speech is None:
            return Sound(bell, rate), False
        gap = np.zeros(int(rate * GAP_AFTER_CHIME), dtype=np.int16)
        return Sound(np.concatenate([bell, gap, speech.samples]), rate), ahead

    def _fall_back(self, text: str, voice: Voice, failure: SpeechError) -> Sound | None:
        if self.fallback is not None:
            try:
                sound = self.fallback.render(text, replace(voice, voice=None))
                if not self._fallback_logged:
                    log.error("%s failed (%s); answering in the espeak-ng voice instead", self.synthesizer.engine.describe(), failure)
                    self._fallback_logged = True
                return sound
            except SpeechError as exc:
                failure = exc
        if not self._speech_failed_logged:
            log.error("speech synthesis failed (%s); answering with the chime only", failure)
            self._speech_failed_logged = True
        return None

    def prepare(self, texts: list[str], voice: Voice) -> None:
        """Render these ahead while the synthesizer is idle (the next answers)."""
        self.synthesizer.prepare(texts, voice)

    def close(self) -> None:
        self.synthesizer.close()
        if self.fallback is not None:
            self.fallback.close()


class Runner:
    """Runs the listening loop over one audio source.

    realtime=False (a WAV file): answers are played to the end before reading on, and the
    skill is told the answer took its duration of stream time, as it would in a room.
    realtime=True (a microphone): answers play in the background while listening goes on.
    """

    def __init__(
        self,
        source: AudioSource,
        recognizer: Recognizer,
        matcher: IntentMatcher,
        skill: Skill,
        emit: Callable[..., None],
        answers: SpokenAnswers | None = None,
        realtime: bool = False,
        voice: Voice = Voice(),
        voice_store: VoiceStore | None = None,
        ready: bool = True,
        memory: Memory | None = None,
        night_voice: NightVoice = NightVoice(),
        echo: "EchoCanceller | None" = None,
    ):
        self.source = source
        self.recognizer = recognizer
        self.matcher = matcher
        self.skill = skill
        self._emit = emit
        self._latest_at = 0.0  # the latest event time reported: 'done' comes last, never before it
        self.answers = answers
        self.realtime = realtime
        self.voice = voice
        self.voice_store = voice_store
        self.ready = ready  # live mode with a speaker: a soft sound says listening has started
        self.memory = memory if memory is not None else Memory()  # skips and favourites (ids and dates)
        self.night_voice = night_voice
        self.echo = echo  # removes its own voice from live chunks (the speaker tells it what it plays)
        self._voice_changed = False  # "speak louder" (or any change) this session wins over the night volume
        self.now = 0.0
        self.recognizer_errors = 0
        self._fed = 0  # samples fed to the recognizer: its clock
        self._shift = 0.0  # stream seconds less the recognizer's, at the last chunk fed
        self._playback: Playback | None = None
        self._stopping = False
        self.wakes = 0
        self._prepared: tuple[tuple[str, ...], Voice] | None = None  # what was last sent to be rendered ahead
        self._prepared_at = float("-inf")

    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        listening = False
        deaf_until = 0.0  # stream seconds: the ready sound, as the microphone hears it
        try:
            for chunk in self.source.chunks():
                if self.echo is not None:  # before anything hears it; it runs only while the speaker plays
                    chunk = replace(chunk, pcm=self.echo.process(chunk.pcm, chunk.captured))
                if not listening:  # the first audio has arrived: from now on it hears
                    deaf_until = chunk.start + self._play_ready_sound()
                    self.emit("listening", engine=self.recognizer.name)
                    listening = True
                    self._prepare_ahead()
                if chunk.start < deaf_until:
                    continue  # its own ready sound is not for the recognizer
                self.now = chunk.start + len(chunk.pcm) / 2 / SAMPLE_RATE
                self._check_playback()
                self._carry_out_timed(self.skill.on_time(self.now), self.now)
                self._handle_results(self._recognize(chunk))
                if self.now - self._prepared_at >= PREPARE_EVERY:
                    self._prepare_ahead()
                if self._stopping:
                    break
            if not self._stopping:
                self._handle_results(self._on_stream_clock(self.recognizer.finish()))
            if self._playback is not None and not self._stopping:  # a file's last answer is played to its end; a stop cuts it
                self._playback.wait(60)
                self._check_playback()
        finally:
            if self._playback is not None:
                self._playback.stop()
                self._playback.wait(1.0)  # the speaker's thread aborts its stream (a block at most) before the program ends
            self.source.close()
        self.emit("done", at=max(round(self.now, 2), self._latest_at), wakes=self.wakes)

    def emit(self, event: str, **fields) -> None:
        """Report an event (the writer given), keeping track of the latest time reported: a
        phrase at a file's very end is decided after it, in the silence the recognizer is
        flushed with, and 'done' must not come before it."""
        if isinstance(fields.get("at"), (int, float)):
            self._latest_at = max(self._latest_at, fields["at"])
        self._emit(event, **fields)

    def microphone_lost(self, reason: str) -> None:
        """The microphone is gone (called once per outage, by the source, while it waits to
        reconnect): a screen-free device says so with a low tone, so that it is never deaf in
        silence. Played to its end: reconnecting restarts PortAudio, which would cut it."""
        self.emit("microphone_lost", reason=reason, at=round(self.now, 2))
        if not (self.realtime and self.answers is not None):
            return
        playback = self.answers.speaker.play(lost_sound(volume=self._voice_at(self.now).volume))
        playback.wait(5)
        if playback.error is not None:
            log.warning("the microphone-lost tone could not be played (%s)", playback.error)

    def _prepare_ahead(self) -> None:
        """Have the next question and the next tip rendered while the speech worker is idle, in
        the voice they would be said in now, so that the answer to a wake phrase (or "another
        one") starts at once even where rendering is slow (Piper on a Raspberry Pi)."""
        self._prepared_at = self.now
        if self.answers is None:
            return
        texts = tuple(say.text for say in self.skill.upcoming(self.now))
        # The short lines that may come next: after an answer "Saved." and "Goodnight. ...", in a
        # timed moment "Time's up.".
        if self.skill.state == TIMER:
            texts = (TIME_UP_LINE,)
        elif self.skill.last is not None:
            texts += (SAVED_LINE, GOODNIGHT_LINE)
        voice = self._voice_at(self.now)
        if not texts or (texts, voice) == self._prepared:
            return
        self._prepared = (texts, voice)
        self.answers.prepare(list(texts), voice)

    def _play_ready_sound(self) -> float:
        """Live mode with a speaker: play the ready sound to its end. Returns the seconds of
        microphone audio that may hold it (0 if none was played)."""
        if not (self.realtime and self.ready and self.answers is not None):
            return 0.0
        started = time.monotonic()
        playback = self.answers.speaker.play(ready_sound(volume=self._voice_at(0.0).volume))
        playback.wait(5)
        if playback.error is not None:
            log.warning("the speaker failed on the ready sound (%s)", playback.error)
        # The stream's clock runs with the wall clock: everything heard while it played, and
        # a little after (the speaker's latency), is the sound itself.
        return time.monotonic() - started + READY_SOUND_TAIL

    def _recognize(self, chunk: AudioChunk) -> list[Heard]:
        """Feed the recognizer; a chunk it chokes on is dropped and listening goes on."""
        self._shift = chunk.start - self._fed / SAMPLE_RATE
        self._fed += len(chunk.pcm) // 2
        try:
            results = self.recognizer.feed(chunk.pcm)
        except Exception as exc:
            self.recognizer_errors += 1
            if self.recognizer_errors in (1, 10, 100) or self.recognizer_errors % 1000 == 0:
                log.error("the recognizer failed on a piece of audio (%s: %s); dropped it (%d so far)", type(exc).__name__, exc, self.recognizer_errors)
            return []
        return self._on_stream_clock(results)

    def _on_stream_clock(self, results: list[Heard]) -> list[Heard]:
        """Results with their times on the stream's clock. The recognizer counts the audio it
        was fed; the stream's clock also counts what it was not: its own ready sound, and a
        microphone outage (issue 23: after ten seconds without a microphone, what was said
        after the next answer was taken for its own voice for ten seconds). A file's chunks
        all go in: there the two are the same."""
        shift = self._shift
        if not shift:
            return results
        return [
            replace(heard, at=heard.at + shift, start=None if heard.start is None else heard.start + shift, end=None if heard.end is None else heard.end + shift)
            for heard in results
        ]

    def _handle_results(self, results) -> None:
        for heard in results:
            if heard.text:
                log.debug("heard %r (confidence %.2f, final %s)", heard.text, heard.confidence, heard.final)
            else:
                log.debug("heard no phrase (the recognizer's own line above says what it made of the audio)")
            intent = self.matcher.match(heard)
            if intent is not None:
                self._on_intent(intent)

    def _on_intent(self, intent: Intent) -> None:
        speaking = self.skill.speaking and self._playback is not None
        actions = self.skill.on_intent(intent)
        ignored = [a for a in actions if isinstance(a, Ignored)]
        for action in ignored:
            # Outside its window a command is most likely ordinary speech: debug level only.
            level = logging.DEBUG if action.reason == "no follow-up window" else logging.INFO  # "quiet": after goodnight
            log.log(level, "%s ignored at %.2f s (%s)", action.intent, intent.at, action.reason)
            self.emit("ignored", intent=action.intent, reason=action.reason, at=round(intent.at, 2))
        if ignored:
            return
        self.wakes += 1
        if speaking:
            log.info("%s heard at %.2f s while speaking (barge-in through echo cancellation): the answer is cut", intent.kind, intent.at)
            self.emit("wake", intent=intent.kind, at=round(intent.at, 2), while_speaking=True)
        else:
            log.info("%s heard at %.2f s", intent.kind, intent.at)
            self.emit("wake", intent=intent.kind, at=round(intent.at, 2))
        for action in actions:
            if isinstance(action, StopSpeaking):
                self._cut_playback()
                self._speech_done(self.now)
            elif isinstance(action, Say):
                self._say(action, intent)
            elif isinstance(action, AdjustVoice):
                self._adjust(action, intent)
            elif isinstance(action, NextTurn):
                self.memory.set_next_turn(action.name)
            elif isinstance(action, Forget):
                self.memory.skip(action.phrase.id, action.on)
                self.emit("skip", id=action.phrase.id, at=round(intent.at, 2))
            elif isinstance(action, Favorite):
                self.memory.add_favorite(action.phrase.id)
                self.emit("favorite", id=action.phrase.id, at=round(intent.at, 2))
                self._speak_line(SAVED_LINE, intent.at)
            elif isinstance(action, StopTimer):
                self.emit("timer_done", id=action.phrase.id, stopped=True, at=round(intent.at, 2))
            elif isinstance(action, Goodnight):
                self.emit("goodnight", quiet_until=action.quiet_until.isoformat(timespec="minutes"), at=round(intent.at, 2))
                self._speak_line(GOODNIGHT_LINE, intent.at)

    def _speech_done(self, at: float) -> None:
        """Tell the skill it stopped speaking; a timed moment's silence may start now. What
        the answer's audio left in the C heap goes back to the system (it runs all night)."""
        give_back()
        self._carry_out_timed(self.skill.on_speech_done(at), at)

    def _carry_out_timed(self, actions, at: float) -> None:
        for action in actions:
            if isinstance(action, StartTimer):
                log.info("timed moment: %d s of quiet", action.seconds)
                self.emit("timer", id=action.phrase.id, seconds=action.seconds, at=round(at, 2))
                self._prepare_ahead()
            elif isinstance(action, TimeUp):
                self.emit("timer_done", id=action.phrase.id, stopped=False, at=round(at, 2))
                self._speak_line(TIME_UP_LINE, at)

    def _voice_at(self, at: float) -> Voice:
        """The voice to speak in at stream time `at`: softer at night, unless changed by voice this session."""
        if self._voice_changed:
            return self.voice
        volume = self.night_voice.volume_at(self.skill.clock.local(at), self.voice.volume)
        return self.voice if volume == self.voice.volume else replace(self.voice, volume=volume)

    def _adjust(self, action: AdjustVoice, intent: Intent) -> None:
        day_voice, heard = self.voice, self._voice_at(intent.at)
        self.voice = adjusted(heard, action.change)  # from the voice they heard
        self._voice_changed = True
        if self.voice_store is not None:
            # A change made over the night volume lasts the session; the day volume stays as it was.
            self.voice_store.save(self.voice if heard == day_voice else replace(self.voice, volume=day_voice.volume))
        self.emit("voice", change=action.change, rate=self.voice.rate, volume=self.voice.volume, at=round(intent.at, 2))
        if self.answers is not None:
            self.answers.synthesizer.voice = self.voice
        self._speak_line(f"{action.change.capitalize()}.", intent.at)
        self._prepare_ahead()  # the next answers in the new voice

    def _speak_line(self, text: str, at: float) -> None:
        """A short line of its own ("Saved.", "Goodnight."), chime first, then the skill is told it ended."""
        if self.answers is None:
            self._speech_done(at)
            return
        sound = self.answers.sound_for(text, self._voice_at(at))
        self._play(sound)
        if not self.realtime:
            self._speech_done(at + sound.duration)

    def _say(self, action: Say, intent: Intent) -> None:
        started = time.perf_counter()
        if self.answers is None:
            self.emit("say", **say_event(action, intent.at))
            self._speech_done(intent.at)
            return
        voice = self._voice_at(intent.at)
        sound, ahead = self.answers.answer(action.text, voice)
        first_audio_ms = self._play(sound, started)
        self.emit("say", **say_event(action, intent.at, Spoken(sound.duration, first_audio_ms, voice.volume, ahead)))
        self._prepare_ahead()  # the worker is idle while this answer plays: the next ones now
        if not self.realtime:
            self._speech_done(intent.at + sound.duration)

    def _play(self, sound: Sound, started: float | None = None) -> float:
        """Start playing; in file mode wait for the end. Returns ms from `started` to the first sample."""
        started = time.perf_counter() if started is None else started
        self._cut_playback()
        playback = self.answers.speaker.play(sound)
        first_audio_ms = playback.first_audio_ms(started)
        if self.realtime:
            self._playback = playback
        else:
            playback.wait()
            self._report_playback(playback)
        return first_audio_ms

    def _cut_playback(self) -> None:
        if self._playback is not None:
            self._playback.stop()
            self._playback.wait(1)
            self._playback = None

    def _report_playback(self, playback: Playback) -> None:
        if playback.error is not None:
            log.error("the speaker failed while answering (%s); still listening", playback.error)
            self.emit("error", what="speaker", detail=str(playback.error))

    def _check_playback(self) -> None:
        """Live mode: once the answer has played out (or the speaker got stuck), listen again."""
        playback = self._playback
        if playback is None:
            return
        if not playback.done:
            if time.monotonic() <= playback.deadline:
                return
            playback.stop()  # a device that stopped taking audio without an error
            if playback.error is None:
                playback.error = TimeoutError("the speaker stopped taking audio")
        self._report_playback(playback)
        self._playback = None
        self._speech_done(self.now)
        self.recognizer.reset()
