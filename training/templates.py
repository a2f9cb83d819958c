"""Generated everyday sentences that use the wake phrases' words in other ways.

"they asked a question we couldn't answer" is what ordinary speech sounds like right next to
"ask us a question": the hardest ordinary negatives. These templates make a few hundred
such sentences (seeded), to add to the hand-written ones in training/sentences/. No sentence
holds a wake phrase, a bench near miss, or a bench near miss's distinctive word.
"""

from __future__ import annotations

import random

SUBJECTS = ("they", "she", "he", "my mum", "the teacher", "everyone", "nobody", "the kids", "your brother", "the man next door", "our neighbour", "the doctor", "my boss", "a reporter", "the waiter", "grandad", "the host", "somebody")
OBJECTS = ("us", "me", "them", "her", "him", "you", "everybody", "the class", "my sister", "the panel")
TAILS = ("", "", "yesterday", "at dinner", "on the phone", "this morning", "about the weather", "after the film", "last night", "in the car", "at work", "before bed", "about money", "at the party", "in the meeting", "on the radio")
QUESTION_VERBS = ("asked", "answered", "dodged", "ignored", "repeated", "raised", "avoided", "understood")
QUESTION_NOUNS = ("question", "questions", "quiz", "request", "puzzle")
TIP_NOUNS = ("tip", "tips", "tap", "top", "trip", "ticket", "tin", "ship", "lid")
GIVE_VERBS = ("gave", "gives", "handed", "showed", "sent", "offered", "lent", "brought")
GIVE_THINGS = ("a ride home", "the keys", "a lecture", "a present", "a cup of tea", "a fright", "the remote", "a wave", "a map", "a bag of apples", "a blanket", "the address")
TELL_VERBS = ("told", "tells", "showed", "taught", "warned", "reminded")
TELL_THINGS = ("the news", "the truth about it", "where to park", "what happened", "how to fix it", "about the trip", "the whole plan", "to be quiet", "it was late", "the rules")


def _sentences(rng: random.Random) -> list[str]:
    s, o, t = rng.choice(SUBJECTS), rng.choice(OBJECTS), rng.choice(TAILS)
    tail = f" {t}" if t else ""
    return [
        f"{s} {rng.choice(QUESTION_VERBS)} a {rng.choice(QUESTION_NOUNS)}{tail}",
        f"{s} {rng.choice(QUESTION_VERBS)} the {rng.choice(QUESTION_NOUNS)}{tail}",
        f"{s} asked {o} about it{tail}",
        f"{s} asked {o} a favour{tail}",
        f"can i ask a {rng.choice(QUESTION_NOUNS)} about the {rng.choice(('bill', 'garden', 'car', 'holiday', 'form'))}",
        f"that is a {rng.choice(('fair', 'hard', 'strange', 'simple', 'big'))} {rng.choice(QUESTION_NOUNS)}",
        f"{s} left a {rng.choice(TIP_NOUNS)} on the table{tail}",
        f"{s} {rng.choice(GIVE_VERBS)} {o} {rng.choice(GIVE_THINGS)}{tail}",
        f"{s} {rng.choice(TELL_VERBS)} {o} {rng.choice(TELL_THINGS)}{tail}",
        f"give {rng.choice(('it', 'them', 'the dog', 'your dad'))} {rng.choice(GIVE_THINGS)}",
        f"tell {rng.choice(('them', 'her', 'your mum', 'the kids'))} {rng.choice(TELL_THINGS)}",
        f"ask {rng.choice(('them', 'your dad', 'the driver', 'the shop'))} {rng.choice(('about the time', 'if it is open', 'where it is', 'for a receipt', 'what they think'))}",
        f"we {rng.choice(('asked', 'told', 'gave'))} {rng.choice(('them', 'her', 'the landlord', 'the kids'))} {rng.choice(('a ring', 'the money', 'some help', 'the news', 'a week'))}{tail}",
    ]


def template_sentences(count: int = 600, seed: int = 11) -> list[str]:
    """``count`` distinct template sentences (fewer if the templates run out), seeded."""
    from training.confusions import _bench_near_misses, _banned_words

    rng = random.Random(seed)
    banned_words = _banned_words()
    banned = tuple(f" {p} " for p in _bench_near_misses()) + tuple(
        f" {p} " for p in ("ask us a question", "ask me a question", "give us a question", "give us a tip", "tell us a tip", "give me a tip")
    )
    out: dict[str, None] = {}
    tries = 0
    while len(out) < count and tries < count * 50:
        tries += 1
        for sentence in _sentences(rng):
            padded = f" {sentence} "
            if any(b in padded for b in banned) or any(w in banned_words for w in sentence.split()):
                continue
            out.setdefault(sentence, None)
    return list(out)[:count]
