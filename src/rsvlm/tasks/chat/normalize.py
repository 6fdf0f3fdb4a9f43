"""Answer normalisation: a chat model says "Yes, there are twelve." where the annotation says "yes" or "12".

Every step is switched on by the task protocol (``Normalisation``), so a report states exactly which
differences were forgiven. Order: Unicode NFKC (``m²`` → ``m2``), lower case, units, thousands
separators, punctuation, number words, number–unit gluing (``10 m2`` → ``10m2``), articles, synonyms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from rsvlm.tasks.chat.protocols import Normalisation

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "dozen": 12,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORDS = {*_UNITS, *_TEENS, *_TENS, *_SCALES}
_ARTICLES = {"a", "an", "the"}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _phrase_pattern(phrases: Mapping[str, str]) -> re.Pattern[str] | None:
    """One regex matching any key as whole words, longest first (``square meters`` before ``meters``)."""
    if not phrases:
        return None
    keys = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<![\w^])(?:" + "|".join(re.escape(k.lower()) for k in keys) + r")(?![\w^])")


def _replace_phrases(text: str, phrases: Mapping[str, str]) -> str:
    pattern = _phrase_pattern(phrases)
    if pattern is None:
        return text
    lower = {k.lower(): v for k, v in phrases.items()}
    return pattern.sub(lambda m: lower[m.group(0)], text)


_KIND = {
    **dict.fromkeys(_UNITS, "unit"),
    **dict.fromkeys(_TEENS, "teen"),
    **dict.fromkeys(_TENS, "tens"),
    "hundred": "hundred",
    "thousand": "scale",
    "million": "scale",
}
_FOLLOWS: dict[str, tuple[str | None, ...]] = {
    # which kind of word may precede each kind inside one number (None: it may start one)
    "unit": (None, "tens", "hundred", "scale"),
    "teen": (None, "hundred", "scale"),
    "tens": (None, "hundred", "scale"),
    "hundred": ("unit", "teen", "tens"),
    "scale": ("unit", "teen", "tens", "hundred"),
}


def _flush(tokens: list[str]) -> str:
    """Digits of a run of number words (or of one number already in digits)."""
    total = current = 0
    for token in tokens:
        if token.isdigit():
            current += int(token)
        elif token in _UNITS:
            current += _UNITS[token]
        elif token in _TEENS:
            current += _TEENS[token]
        elif token in _TENS:
            current += _TENS[token]
        elif token == "hundred":
            current = max(current, 1) * 100
        elif token in _SCALES:
            total += max(current, 1) * _SCALES[token]
            current = 0
    return str(total + current)


def words_to_numbers(text: str) -> str:
    """Replace runs of English number words by digits (``twenty-one`` → ``21``, ``a hundred`` → ``100``).

    A new number starts where the words cannot continue one (``two three`` → ``2 3``); ``and`` joins only
    inside a number (``one hundred and five``); ``a`` counts as one only before a scale word or ``dozen``;
    a scale word alone (``hundreds of trees``) is no number.
    """
    words = text.replace("-", " ").split()
    out: list[str] = []
    run: list[str] = []
    last: str | None = None  # kind of the previous word in the run

    def close() -> None:
        nonlocal run, last
        if run:
            out.append(_flush(run))
        run, last = [], None

    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word == "a" and nxt in ("hundred", "thousand", "million", "dozen"):
            close()
            run, last = ["one"], "unit"
            continue
        if word == "and" and last in ("hundred", "scale") and nxt in _NUMBER_WORDS and nxt not in _SCALES:
            continue
        kind = _KIND.get(word)
        if kind is None:
            close()
            out.append(word)
            continue
        if word == "dozen" and last == "unit":
            run, last = [str(int(_flush(run)) * 12)], "teen"
            continue
        if last not in _FOLLOWS[kind]:
            close()
        if kind in ("hundred", "scale") and not run:
            out.append(word)
            continue
        run.append(word)
        last = kind
    close()
    return " ".join(out)


def normalize_answer(text: str, rules: Normalisation) -> str:
    """The comparable form of an answer (or of a ground truth) under a protocol's rules."""
    text = unicodedata.normalize("NFKC", text)
    if rules.lowercase:
        text = text.lower()
    text = _replace_phrases(text, rules.units)
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 1,234 -> 1234
    if rules.strip_punctuation:
        text = re.sub(r"(?<=\d)\.(?=\d)", "\0", text)  # keep decimal points
        text = re.sub(r"[^\w\s\0]|_", " ", text).replace("\0", ".")
    if rules.number_words:
        text = words_to_numbers(text)
    units = sorted({re.escape(u.lower() if rules.lowercase else u) for u in rules.units.values()}, key=len)
    if units:
        text = re.sub(r"(\d)\s+(" + "|".join(units[::-1]) + r")\b", r"\1\2", text)
    if rules.strip_articles:
        text = " ".join(w for w in text.split() if w not in _ARTICLES)
    text = _replace_phrases(text, rules.synonyms)
    return " ".join(text.split())


def first_number(text: str) -> float | None:
    """The first number written in digits (after normalisation), or None."""
    match = _NUMBER.search(text)
    return float(match.group(0)) if match else None


def contains_phrase(text: str, phrase: str) -> int | None:
    """Start offset of ``phrase`` as whole words (a plural ``s``/``es`` allowed) in ``text``, or None."""
    match = re.search(r"(?<!\w)" + re.escape(phrase) + r"(?:s|es)?(?!\w)", text)
    return match.start() if match else None
