"""LoCoMo's answer scores (snap-research/locomo, ``task_eval/evaluation.py``): token F1
after normalization (lower case, no punctuation, no articles, no commas), Porter stems.

Per category, as the official script does: multi-hop answers (1) are split on commas and
each gold part takes the best predicted part; open-domain golds (3) keep the part before
the first ``;``; adversarial questions (5) score 1 when the prediction says the
information is not available, 0 otherwise.
"""

from __future__ import annotations

import re
import string
import threading
from collections import Counter
from typing import Any

_local = threading.local()
_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer  # PyStemmer, a core dependency

        stemmer = _local.stemmer = Stemmer.Stemmer("porter")
    return stemmer


def normalize_answer(text: str) -> str:
    text = text.replace(",", "").lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Token F1 of one prediction against one gold answer (stemmed, normalized)."""
    stem = _stemmer().stemWords
    predicted = stem(normalize_answer(prediction).split())
    expected = stem(normalize_answer(gold).split())
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def locomo_f1(prediction: str, gold: str, category: int) -> float:
    """The official score of ``prediction`` for a question of ``category``."""
    if category == 5:
        said = prediction.lower()
        return 1.0 if "no information available" in said or "not mentioned" in said else 0.0
    if category == 1:
        parts = [part.strip() for part in prediction.split(",")]
        golds = [part.strip() for part in gold.split(",")]
        return sum(max(token_f1(part, one) for part in parts) for one in golds) / len(golds)
    if category == 3:
        gold = gold.split(";")[0].strip()
    return token_f1(prediction, gold)


__all__ = ["locomo_f1", "normalize_answer", "token_f1"]
