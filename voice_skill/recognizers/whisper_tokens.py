"""The judge's tokenizer: Whisper's byte-level BPE (GPT-2's), read from the model's own
tokenizer.json, in plain Python.

The judge turns a few short texts into tokens per candidate (the trigger phrases, once, and
the start of a transcript) and a transcript's tokens back into text. The `tokenizers`
package does the same but requires huggingface-hub and its network stack at install time;
this is the same algorithm (the tests check it against `tokenizers` token for token):

1. the text is split into pieces (a word with the space before it, a number, punctuation);
2. each piece's UTF-8 bytes are mapped to printable characters (GPT-2's byte alphabet);
3. adjacent symbols are merged, lowest-ranked merge first, until no merge applies;
4. each resulting symbol is a vocabulary entry.

Special tokens (<|endoftext|>, <|startoftranscript|>, ...) are looked up by name and left
out when decoding.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

# GPT-2's pre-tokenizer, with Python's classes for Unicode letters ([^\W\d_]) and numbers (\d).
PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


def byte_alphabet() -> dict[int, str]:
    """GPT-2's map of the 256 byte values to printable characters (spaces and control bytes
    are moved above U+0100 so that every token is visible)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


class WhisperTokenizer:
    def __init__(self, tokenizer_json: Path):
        data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
        model = data["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"{tokenizer_json}: not a BPE tokenizer")
        self._vocab: dict[str, int] = model["vocab"]
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        self._ranks: dict[tuple[str, str], int] = {pair: rank for rank, pair in enumerate(merges)}
        self._special = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
        self._names = {i: s for s, i in self._vocab.items()}
        self._names.update({i: s for s, i in self._special.items()})
        self._special_ids = {t["id"] for t in data.get("added_tokens", []) if t.get("special")}
        self._to_char = byte_alphabet()
        self._to_byte = {c: b for b, c in self._to_char.items()}
        self._merge = lru_cache(maxsize=4096)(self._merge_piece)

    def token_to_id(self, token: str) -> int | None:
        return self._special.get(token, self._vocab.get(token))

    def _merge_piece(self, piece: str) -> tuple[str, ...]:
        symbols = list(piece)
        while len(symbols) > 1:
            pairs = [(self._ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
            rank, _ = min(((r, i) for r, i in pairs if r is not None), default=(None, None))
            if rank is None:
                break
            pair = next((symbols[i], symbols[i + 1]) for r, i in pairs if r == rank)
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(symbols)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in PIECES.findall(text):
            for symbol in self._merge("".join(self._to_char[b] for b in piece.encode("utf-8"))):
                ids.append(self._vocab[symbol])
        return ids

    def decode(self, ids) -> str:
        text = "".join(self._names.get(i, "") for i in ids if i not in self._special_ids)
        return bytes(self._to_byte[c] for c in text if c in self._to_byte).decode("utf-8", errors="replace")
