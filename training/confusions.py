"""Generated hard negatives for the wake phrases: partial phrases, sound-alikes, crossed intents.

Nothing here is a hand list of evaluation sentences. Three sources:
- partial phrases: pieces of the triggers ("a question", "us a tip", "ask us a") and the
  object noun with other determiners and carriers ("the question", "one more tip");
- sound-alikes: each word of a trigger replaced by a word of the CMU dictionary (shipped with
  pocketsphinx) whose phones differ by one or two (stress ignored), e.g. "ask gus a question";
- crossed intents: the verb of one intent with the object of the other ("ask us a tip").
The run-time module ``voice_skill.recognizers.confusions`` (the wake engine's own confusion
generator) is a fourth source: its ``confusion_phrases(trigger)``, frozen in
``training/runtime_confusions.tsv`` so that the training data stays reproducible.

The bench's near-miss sentences (``bench.corpus.NEAR_MISSES``) are evaluation material: they
are only used here to keep them *out* of training, exactly and by their distinctive word
("give us a kick" bans every generated "... kick"). ``bench/heldout_near_misses.txt`` is never
read here (tests check that training text is disjoint from it).
"""

from __future__ import annotations

import importlib
import os
import random
import zlib
from functools import lru_cache
from pathlib import Path

TRIGGER_INTENTS = ("question", "tip")
DETERMINERS = ("the", "this", "that", "one", "no", "any", "my", "your", "our", "another", "every", "some")
MODIFIED = ("just a", "only a", "quite a", "such a", "not a", "what a", "a quick", "a small", "a little", "one more", "a last", "a new", "a better", "the next", "the last", "a real")
CARRIERS = ("{} please", "here is {}", "what is {}", "it was {}", "that was {}", "so {}", "{} for you", "and {}", "well {}", "{} again")
# Words never banned for being in a bench near miss: pronouns and function words carry the
# trigger's own frame ("ask him a question" is banned exactly, "tell him a tip" is not).
FUNCTION_WORDS = frozenset("a an the i i'll i'm you your he him she her it it's we us me they them that that's this here here's there what".split())
COMMON_WORD_LOGPROB = -135000  # pocketsphinx log-math units ("gus" -126466, "ascii" -148851)
MORPHOLOGY = ("s", "es", "ed", "d", "ing", "er", "ers", "'s", "s'")


def _bench_near_misses() -> tuple[str, ...]:
    try:
        from bench.corpus import NEAR_MISSES
    except ImportError:  # bench is not shipped with the package; training runs from a checkout
        return ()
    return tuple(NEAR_MISSES)


def _strip_stress(phones: str) -> tuple[str, ...]:
    return tuple("".join(c for c in p if not c.isdigit()) for p in phones.split())


@lru_cache(maxsize=1)
def cmudict() -> dict[str, tuple[tuple[str, ...], ...]]:
    """word -> its pronunciations (phones without stress), from pocketsphinx's CMU dictionary,
    common words only: those whose unigram log probability in pocketsphinx's English language
    model is above COMMON_WORD_LOGPROB (drops rare names and abbreviations a synthesiser would
    spell out, such as "akc" or "chea")."""
    from pocketsphinx import NGramModel, get_model_path

    base = os.path.join(get_model_path(), "en-us")
    lm = NGramModel.readfile(os.path.join(base, "en-us.lm.bin"))
    words: dict[str, list[tuple[str, ...]]] = {}
    with open(os.path.join(base, "cmudict-en-us.dict"), encoding="utf-8") as lines:
        for line in lines:
            entry, _, phones = line.strip().partition(" ")
            word = entry.split("(", 1)[0]
            words.setdefault(word, []).append(_strip_stress(phones))
    return {w: tuple(p) for w, p in words.items() if w[0].isalpha() and lm.prob([w]) > COMMON_WORD_LOGPROB}


def _distance(a: tuple[str, ...], b: tuple[str, ...], limit: int) -> int:
    """Phone edit distance (insert, delete, substitute), or limit + 1 if more than limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, pa in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, pb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (pa != pb))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


@lru_cache(maxsize=64)
def sound_alike_words(word: str, max_distance: int = 2) -> tuple[tuple[str, int], ...]:
    """Dictionary words whose pronunciation is 1..max_distance phones from one of ``word``'s,
    excluding homophones and mere inflections of the word itself; sorted by distance, then word."""
    words = cmudict()
    targets = words.get(word, ())
    found = []
    for other, prons in words.items():
        if other == word or not other.replace("'", "").isalpha() or len(other) < 2:
            continue
        if any(other == word + suffix for suffix in MORPHOLOGY) or any(word == other + suffix for suffix in MORPHOLOGY):
            continue
        best = min((_distance(t, p, max_distance) for t in targets for p in prons), default=max_distance + 1)
        if best == 0 or best > max_distance:
            continue
        if any(t == p for t in targets for p in prons):  # a homophone in one of its readings
            continue
        found.append((other, best))
    return tuple(sorted(found, key=lambda item: (item[1], item[0])))


RUNTIME_SNAPSHOT = Path(__file__).resolve().parent / "runtime_confusions.tsv"


def _runtime_confusions(trigger: str) -> list[str]:
    """The run-time module's confusion_phrases(trigger), as frozen in runtime_confusions.tsv
    (so that a change to the run-time module does not silently change the training data;
    refresh the snapshot with ``python3 -m training.confusions --refresh``)."""
    if RUNTIME_SNAPSHOT.exists():
        rows = (line.split("\t", 1) for line in RUNTIME_SNAPSHOT.read_text("utf-8").splitlines() if line and not line.startswith("#"))
        return [phrase for source, phrase in rows if source == trigger]
    return _runtime_module_confusions(trigger)


def _runtime_module_confusions(trigger: str) -> list[str]:
    try:
        module = importlib.import_module("voice_skill.recognizers.confusions")
    except ImportError:
        return []
    return [str(p) for p in module.confusion_phrases(trigger)]


def refresh_runtime_snapshot(triggers: list[str]) -> int:
    rows = [f"{t}\t{p}" for t in sorted(triggers) for p in _runtime_module_confusions(t)]
    header = "# voice_skill.recognizers.confusions.confusion_phrases(trigger), frozen for training: trigger<TAB>phrase\n"
    RUNTIME_SNAPSHOT.write_text(header + "\n".join(rows) + "\n", "utf-8")
    return len(rows)


def _banned_words() -> frozenset[str]:
    trigger_words = {"ask", "give", "tell", "us", "me", "a", "question", "tip"}
    return frozenset(w for s in _bench_near_misses() for w in s.split() if w not in trigger_words and w not in FUNCTION_WORDS)


def allowed(phrase: str, triggers: set[str]) -> bool:
    """Not a trigger, not a bench near miss, and without a bench near miss's distinctive word."""
    if phrase in triggers or phrase in set(_bench_near_misses()):
        return False
    banned = _banned_words()
    return not any(w in banned for w in phrase.split())


def _objects(table) -> dict[str, list[str]]:
    """The object noun of each intent's phrases ("question", "tip")."""
    return {intent: sorted({p.split()[-1] for p in table.intents[intent]}) for intent in TRIGGER_INTENTS}


def partial_phrases(table) -> list[str]:
    triggers = {p for i in TRIGGER_INTENTS for p in table.intents[i]}
    out: set[str] = set()
    for phrase in triggers:
        words = phrase.split()
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                if (i, j) != (0, len(words)):
                    out.add(" ".join(words[i:j]))
    for nouns in _objects(table).values():
        for noun in nouns:
            pieces = [f"{d} {noun}" for d in DETERMINERS] + [f"{m} {noun}" for m in MODIFIED]
            out.update(pieces)
            for piece in (f"a {noun}", f"the {noun}", f"one {noun}", f"another {noun}"):
                out.update(c.format(piece) for c in CARRIERS)
    return sorted(p for p in out if allowed(p, triggers))


def crossed_phrases(table) -> list[str]:
    """Verb and pronoun of one intent's phrases with the other intent's object."""
    triggers = {p for i in TRIGGER_INTENTS for p in table.intents[i]}
    objects = _objects(table)
    out = set()
    for intent in TRIGGER_INTENTS:
        heads = {" ".join(p.split()[:-1]) for p in table.intents[intent]}  # "ask us a"
        own_verbs = {h.split()[0] for h in heads}
        for other in TRIGGER_INTENTS:
            if other == intent:
                continue
            other_verbs = {p.split()[0] for p in table.intents[other]}
            for head in heads:
                if head.split()[0] in other_verbs:
                    continue  # "give us a question" is a trigger; "give me a question" is too close to call
                for noun in objects[other]:
                    out.add(f"{head} {noun}")
        del own_verbs
    return sorted(p for p in out if allowed(p, triggers))


def substitution_phrases(table, per_slot: int = 24, seed: int = 0) -> list[str]:
    """Each trigger with one word swapped for a sound-alike (1-2 phones away), at most
    ``per_slot`` per trigger word position, the closest first (ties drawn with the seed)."""
    triggers = {p for i in TRIGGER_INTENTS for p in table.intents[i]}
    out: set[str] = set()
    for phrase in sorted(triggers):
        words = phrase.split()
        for slot, word in enumerate(words):
            candidates = [w for w, d in sound_alike_words(word)]
            rng = random.Random(zlib.crc32(f"{seed}|{phrase}|{slot}".encode()))
            by_distance: dict[int, list[str]] = {}
            for w, d in sound_alike_words(word):
                by_distance.setdefault(d, []).append(w)
            chosen: list[str] = []
            for d in sorted(by_distance):
                group = by_distance[d]
                rng.shuffle(group)
                chosen += group
            del candidates
            picked = 0
            for w in chosen:
                candidate = " ".join(words[:slot] + [w] + words[slot + 1 :])
                if allowed(candidate, triggers):
                    out.add(candidate)
                    picked += 1
                if picked >= per_slot:
                    break
    return sorted(out)


def hard_negatives(table, seed: int = 0, per_slot: int = 24) -> dict[str, list[str]]:
    """Every generated hard negative, by source."""
    triggers = {p for i in TRIGGER_INTENTS for p in table.intents[i]}
    runtime = sorted({c for t in sorted(triggers) for c in _runtime_confusions(t)} - triggers)
    return {
        "partial": partial_phrases(table),
        "crossed": crossed_phrases(table),
        "substitution": substitution_phrases(table, per_slot=per_slot, seed=seed),
        "runtime": [p for p in runtime if allowed(p, triggers)],
    }


def is_dev_phrase(phrase: str, dev_share: float = 0.2) -> bool:
    """A fixed, seed-independent split of generated phrases and sentences into train and dev."""
    return (zlib.crc32(phrase.encode()) % 1000) < dev_share * 1000


if __name__ == "__main__":
    import sys

    from voice_skill.intents import load_triggers

    if "--refresh" in sys.argv:
        table = load_triggers(Path(__file__).resolve().parent.parent / "phrases" / "triggers.toml")
        count = refresh_runtime_snapshot([p for i in TRIGGER_INTENTS for p in table.intents[i]])
        print(f"wrote {count} phrases to {RUNTIME_SNAPSHOT}")
