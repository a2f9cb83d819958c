"""Write voice_skill/data/word_frequencies.txt: how common each CMU-dictionary word is.

    python3 scripts/make_word_frequencies.py

The confusion generator (voice_skill/recognizers/confusions.py) prefers sound-alike words
people actually say ("kiss", "hug") to rare dictionary entries ("kip"). The frequencies are
the unigram log10 probabilities of the English language model that ships with PocketSphinx
(en-us.lm.bin, CMU Sphinx, BSD-style licence); only words above MIN_LOG10 are kept (about
19,000 of 126,000), so the program never loads the 27 MB model itself.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

MIN_LOG10 = -6.0
OUT = Path(__file__).resolve().parent.parent / "voice_skill" / "data" / "word_frequencies.txt"


def main() -> int:
    import pocketsphinx

    models = os.path.join(pocketsphinx.get_model_path(), "en-us")
    lm = pocketsphinx.NGramModel(pocketsphinx.Config(), pocketsphinx.LogMath(), os.path.join(models, "en-us.lm.bin"))
    unknown = lm.prob(["<no-such-word-here>"])
    words: set[str] = set()
    with open(os.path.join(models, "cmudict-en-us.dict"), encoding="utf-8") as lines:
        for line in lines:
            words.add(line.split(" ", 1)[0].split("(", 1)[0])
    scale = math.log10(1.0001)  # PocketSphinx's log base
    kept = sorted(((lm.prob([w]) * scale, w) for w in words if lm.prob([w]) != unknown), reverse=True)
    kept = [(p, w) for p, w in kept if p > MIN_LOG10]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as out:
        out.write("# word log10(unigram probability), from PocketSphinx's en-us.lm.bin; made by scripts/make_word_frequencies.py\n")
        for p, w in kept:
            out.write(f"{w} {p:.2f}\n")
    print(f"{len(kept)} words -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
