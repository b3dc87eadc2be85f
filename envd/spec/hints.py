"""The "did you mean" hint: a close name, or the envd word for a Compose one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from envd.spec.compose_words import COMPOSE_SYNONYMS


def did_you_mean(word: str, candidates: Iterable[object]) -> str:
    if word in COMPOSE_SYNONYMS:
        return (
            f" (did you mean {COMPOSE_SYNONYMS[word]!r}?)"
            if not COMPOSE_SYNONYMS[word].startswith("(")
            else f" {COMPOSE_SYNONYMS[word]}"
        )
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    # A misspelled Compose word ("enviroment") still deserves the envd name.
    compose = difflib.get_close_matches(word, list(COMPOSE_SYNONYMS), n=1, cutoff=0.75)
    if compose and not COMPOSE_SYNONYMS[compose[0]].startswith("("):
        return f" (did you mean {COMPOSE_SYNONYMS[compose[0]]!r}?)"
    return ""
