"""The neural second signal: a small classifier over a speech embedding.

The features are the Google speech embedding that ``pyopen-wakeword`` bundles (Apache-2.0):
a melspectrogram model and an embedding model, both TFLite, run through the package's own
TensorFlow Lite C library. Every 80 ms of audio gives a 96-dimensional embedding of the
last ~0.78 s. The classifier (numpy only; weights in ``voice_skill/data/wake_neural.npz``,
trained by ``python3 -m training.train_neural``, see ``voice_skill/data/wake_neural.md``)
looks at the last ``frames`` embeddings (16: about 2 s of audio) and says how likely the
audio that ends there is each wake intent ("question", "tip") or neither.

It is not a streaming detector: the caller asks once per candidate, with the last few
seconds of audio and a range of possible phrase ends, and gets the best score per intent
over every classifier window ending in that range (one every 80 ms).

pyopen-wakeword is imported lazily: without it (e.g. on 32-bit Arm, where it has no wheel)
``load_detector`` raises NeuralUnavailable saying why; the rest of the
program does not need it. The wake-word models that pyopen-wakeword also bundles (alexa,
hey_jarvis, ...; non-commercial licence) are never loaded.
"""

from __future__ import annotations

import ctypes
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice_skill.errors import UserError

RATE = 16000
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "wake_neural.npz"
MODEL_FORMAT = 1

MEL_HOP = 160  # samples between melspectrogram frames (10 ms)
MEL_WINDOW = 512  # samples per melspectrogram frame
MEL_BINS = 32
EMB_MELS = 76  # melspectrogram frames per embedding
EMB_STEP_MELS = 8  # frames between embeddings (80 ms)
EMB_DIM = 96
EMB_STEP = EMB_STEP_MELS * MEL_HOP  # 1280 samples
EMB_STEP_SECONDS = EMB_STEP / RATE
EMB_SPAN = MEL_WINDOW + (EMB_MELS - 1) * MEL_HOP  # 12512 samples (0.782 s) of audio per embedding
EMB_BATCH = 8  # embeddings per TFLite call (a fixed shape: no re-allocation, same numbers every run)
MEL_CHUNK = 1760  # samples per melspectrogram call row, as in openWakeWord's streaming front end
MEL_TAIL = MEL_CHUNK - MEL_WINDOW - (EMB_STEP_MELS - 1) * MEL_HOP  # 128 samples past a chunk's last frame
EMB_LEAD_MELS = 4  # frames before the first embedding, so the last embedding ends a chunk's last frame

class NeuralUnavailable(Exception):
    """pyopen-wakeword cannot be loaded on this machine (the message says why)."""


class SpeechEmbedding:
    """pyopen-wakeword's melspectrogram and embedding models, used on whole buffers.

    Raises ImportError or OSError (no pyopen-wakeword, or its TensorFlow Lite library does
    not load on this platform)."""

    def __init__(self) -> None:
        from pyopen_wakeword.openwakeword import OpenWakeWordFeatures

        from voice_skill.native_stderr import quiet_native_stderr, tflite_info

        # TensorFlow Lite prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to
        # fd 2 as the interpreters are made (no setting turns it off): held back, -v logs it.
        with quiet_native_stderr(tflite_info, "TensorFlow Lite"):
            self._owner = OpenWakeWordFeatures.from_builtin()  # loads the library and both models
            self._lib = lib = self._owner.lib
            lib.TfLiteInterpreterOptionsCreate.restype = ctypes.c_void_p
            lib.TfLiteInterpreterOptionsSetNumThreads.argtypes = [ctypes.c_void_p, ctypes.c_int32]
            lib.TfLiteInterpreterOptionsAddDelegate.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.TfLiteInterpreterOptionsDelete.argtypes = [ctypes.c_void_p]
            self._delegates: list[int] = []
            self._interpreters: list[int] = []
            self._mel = self._interpreter(self._owner.mel_model)
            self._emb = self._interpreter(self._owner.emb_model)
            self._resize(self._mel, (1, MEL_CHUNK))
            self._resize(self._emb, (EMB_BATCH, EMB_MELS, MEL_BINS, 1))

    def _interpreter(self, model) -> int:
        """A single-threaded interpreter with the XNNPACK delegate where the library has it
        (about 5 times faster than the reference kernels for the embedding model)."""
        lib = self._lib
        options = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsSetNumThreads(options, 1)
        if hasattr(lib, "TfLiteXNNPackDelegateCreate"):
            lib.TfLiteXNNPackDelegateCreate.restype = ctypes.c_void_p
            lib.TfLiteXNNPackDelegateCreate.argtypes = [ctypes.c_void_p]
            delegate = lib.TfLiteXNNPackDelegateCreate(None)
            if delegate:
                lib.TfLiteInterpreterOptionsAddDelegate(options, delegate)
                self._delegates.append(delegate)
        interpreter = lib.TfLiteInterpreterCreate(model, options)
        lib.TfLiteInterpreterOptionsDelete(options)
        if not interpreter:
            raise RuntimeError("TensorFlow Lite could not create an interpreter")
        self._interpreters.append(interpreter)
        return interpreter

    def _resize(self, interpreter, shape: tuple[int, ...]) -> None:
        dims = (ctypes.c_int32 * len(shape))(*shape)
        if self._lib.TfLiteInterpreterResizeInputTensor(interpreter, ctypes.c_int32(0), dims, ctypes.c_int32(len(shape))) != 0:
            raise RuntimeError(f"TensorFlow Lite could not resize an input to {shape}")
        if self._lib.TfLiteInterpreterAllocateTensors(interpreter) != 0:
            raise RuntimeError("TensorFlow Lite could not allocate tensors")

    def _run(self, interpreter, data: np.ndarray) -> np.ndarray:
        lib = self._lib
        data = np.ascontiguousarray(data, dtype=np.float32)
        tensor = lib.TfLiteInterpreterGetInputTensor(interpreter, ctypes.c_int32(0))
        lib.TfLiteTensorCopyFromBuffer(tensor, data.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(data.nbytes))
        if lib.TfLiteInterpreterInvoke(interpreter) != 0:
            raise RuntimeError("TensorFlow Lite inference failed")
        output = lib.TfLiteInterpreterGetOutputTensor(interpreter, ctypes.c_int32(0))
        out = np.empty(lib.TfLiteTensorByteSize(output) // 4, dtype=np.float32)
        lib.TfLiteTensorCopyToBuffer(output, out.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(out.nbytes))
        return out

    def mels(self, segment: np.ndarray) -> np.ndarray:
        """Melspectrogram frames of float audio in [-1, 1], computed as openWakeWord's streaming
        front end does: one call per chunk of 1760 samples, 1280 apart, 8 frames each (frame i
        covers samples [160 i, 160 i + 512)), so that each frame depends only on audio near it
        (the model clamps its log scale 80 dB below the loudest frame of its whole input). ``segment``
        must hold 1280 k + 480 samples; returns (8 k, 32), scaled as openWakeWord scales them
        for the embedding model."""
        chunks = (len(segment) - MEL_CHUNK + EMB_STEP) // EMB_STEP
        assert chunks >= 1 and len(segment) == EMB_STEP * (chunks - 1) + MEL_CHUNK, len(segment)
        scaled = np.asarray(segment, dtype=np.float32) * 32767.0
        out = np.empty((chunks, EMB_STEP_MELS, MEL_BINS), dtype=np.float32)
        # One chunk per call: the clamp is over the whole input tensor, batch included.
        for i in range(chunks):
            out[i] = self._run(self._mel, scaled[None, i * EMB_STEP : i * EMB_STEP + MEL_CHUNK]).reshape(EMB_STEP_MELS, MEL_BINS)
        return out.reshape(-1, MEL_BINS) / 10.0 + 2.0

    def embed(self, mels: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Embeddings (n, 96) of the mel windows mels[s : s + 76] for each start s."""
        out = np.empty((len(starts), EMB_DIM), dtype=np.float32)
        batch = np.zeros((EMB_BATCH, EMB_MELS, MEL_BINS, 1), dtype=np.float32)
        for i in range(0, len(starts), EMB_BATCH):
            chunk = starts[i : i + EMB_BATCH]
            batch[:] = 0.0
            for j, s in enumerate(chunk):
                batch[j, :, :, 0] = mels[s : s + EMB_MELS]
            out[i : i + len(chunk)] = self._run(self._emb, batch).reshape(EMB_BATCH, EMB_DIM)[: len(chunk)]
        return out

    def sequence(self, audio: np.ndarray, end_sample: int, count: int) -> np.ndarray:
        """``count`` embeddings, 80 ms apart, the last one ending at ``end_sample``.

        Only audio before ``end_sample`` is used (the last mel chunk's 128 samples beyond it
        are zeros, always, so the result does not depend on what follows); audio before the
        start of ``audio`` is taken as silence."""
        chunks = count + (EMB_MELS + EMB_LEAD_MELS) // EMB_STEP_MELS - 1
        length = EMB_STEP * (chunks - 1) + MEL_CHUNK - MEL_TAIL
        start = end_sample - length
        segment = np.zeros(length + MEL_TAIL, dtype=np.float32)
        lo, hi = max(start, 0), min(end_sample, len(audio))
        if hi > lo:
            segment[lo - start : hi - start] = audio[lo:hi]
        mels = self.mels(segment)
        return self.embed(mels, EMB_LEAD_MELS + np.arange(count) * EMB_STEP_MELS)

    def close(self) -> None:
        for interpreter in self._interpreters:
            self._lib.TfLiteInterpreterDelete(interpreter)
        self._interpreters = []
        if self._delegates:
            self._lib.TfLiteXNNPackDelegateDelete.argtypes = [ctypes.c_void_p]
            for delegate in self._delegates:
                self._lib.TfLiteXNNPackDelegateDelete(delegate)
            self._delegates = []
        self._owner.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: ctypes may be gone already
            pass


@dataclass(frozen=True)
class NeuralEvidence:
    scores: dict[str, float]  # intent -> probability, the max over the windows considered
    end: float  # seconds (relative to the given audio's start) of the window end that gave the max


class Classifier:
    """The numpy MLP over ``frames`` consecutive embeddings; see training/train_neural.py."""

    def __init__(self, path: Path):
        self.path = Path(path)
        where = str(self.path)
        try:
            with np.load(self.path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise UserError(f"{where}: neural wake model not found; reinstall voice-skill or rebuild it with python3 -m training.train_neural") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(f"{where}: not a valid neural wake model ({type(exc).__name__}); rebuild it with python3 -m training.train_neural") from None
        try:
            meta = json.loads(str(arrays["meta"]))
            if meta.get("format") != MODEL_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {MODEL_FORMAT}")
            self.classes = tuple(meta["classes"])
            self.frames = int(meta["frames"])
            self.meta = meta
            self.mean = arrays["mean"].astype(np.float32)
            self.scale = (1.0 / arrays["std"]).astype(np.float32)
            self.layers = []
            for i in range(int(meta["layers"])):
                self.layers.append((arrays[f"w{i}"].astype(np.float32), arrays[f"b{i}"].astype(np.float32)))
            width = self.frames * EMB_DIM
            if self.mean.shape != (width,) or self.scale.shape != (width,) or self.classes[0] != "none":
                raise ValueError("input normalisation does not match the frame count")
            for w, b in self.layers:
                if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                    raise ValueError(f"layer shapes {w.shape} / {b.shape} do not chain")
                width = w.shape[1]
            if width != len(self.classes) or not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in self.layers):
                raise ValueError("output layer does not match the classes, or weights are not finite")
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise UserError(f"{where}: not a valid neural wake model ({exc}); rebuild it with python3 -m training.train_neural") from None

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes) for windows (n, frames, 96)."""
        x = (windows.reshape(len(windows), -1) - self.mean) * self.scale
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < len(self.layers) - 1:
                np.maximum(x, 0.0, out=x)
        x -= x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        return x / x.sum(axis=1, keepdims=True)


class NeuralDetector:
    def __init__(self, model_path: Path | None = None, embedding: SpeechEmbedding | None = None):
        self.classifier = Classifier(model_path or DEFAULT_MODEL)
        self.intents: tuple[str, ...] = self.classifier.classes[1:]
        self.frames = self.classifier.frames
        self.window_seconds: float = (EMB_SPAN + (self.frames - 1) * EMB_STEP) / RATE
        self.thresholds: dict[str, float] = dict(self.classifier.meta.get("thresholds", {}))
        self.embedding = embedding or SpeechEmbedding()

    def score(self, audio: np.ndarray, ends: tuple[float, float]) -> NeuralEvidence:
        """The best probability per intent over every classifier window ending within
        ``ends`` (seconds into ``audio``; windows are 80 ms apart, the last one at ends[1]).
        Audio before the buffer's start counts as silence."""
        audio = np.asarray(audio, dtype=np.float32)
        duration = len(audio) / RATE
        latest = min(max(ends[1], 0.0), duration)
        earliest = min(max(ends[0], 0.0), latest)
        count = int(np.floor((latest - earliest) / EMB_STEP_SECONDS + 1e-9)) + 1
        end_sample = int(round(latest * RATE))
        embeddings = self.embedding.sequence(audio, end_sample, count + self.frames - 1)
        windows = np.lib.stride_tricks.sliding_window_view(embeddings, (self.frames, EMB_DIM))[:, 0]
        probs = self.classifier.probabilities(windows)
        wake = probs[:, 1:]
        best = int(np.argmax(wake.max(axis=1)))
        scores = {intent: float(wake[:, i].max()) for i, intent in enumerate(self.intents)}
        return NeuralEvidence(scores, (end_sample - (count - 1 - best) * EMB_STEP) / RATE)


def load_detector(model_path: Path | None = None) -> NeuralDetector:
    """The detector. Raises NeuralUnavailable when pyopen-wakeword cannot be loaded here,
    UserError for a missing or corrupt weights file."""
    try:
        embedding = SpeechEmbedding()
    except (ImportError, OSError, ValueError, RuntimeError, AttributeError) as exc:
        raise NeuralUnavailable(f"the neural wake signal is off: pyopen-wakeword cannot be loaded ({type(exc).__name__}: {exc})") from None
    return NeuralDetector(model_path, embedding=embedding)
