"""METEOR as LongLaMP scores it: nltk's ``meteor_score`` (what the HF ``evaluate`` metric
"meteor" calls), with WordNet read from a database installed offline.

LongLaMP (Kumar et al. 2024) reports ``evaluate.load("meteor")``: each text is tokenized
with nltk's ``word_tokenize``, and ``nltk.translate.meteor_score.meteor_score`` scores the
prediction against the one reference with alpha 0.9, beta 3 and gamma 0.5 (exact, Porter
stem and WordNet synonym matches, lower-cased); the scores are averaged over examples.
tailor calls the same nltk function with the same parameters. Two things come from
elsewhere, because nltk's downloader cannot run offline:

- **WordNet.** The WordNet 3.0 database (the version nltk's ``wordnet`` data package holds)
  is read from, in order: the folder ``$TAILOR_WORDNET``; nltk's own data
  (``corpora/wordnet``), where it is installed; Debian's ``wordnet-base`` package
  (``/usr/share/wordnet``, ``apt-get install wordnet-base``). Debian's package lacks the
  ``lexnames`` file nltk's reader opens (the names of the 45 lexicographer files, fixed
  since WordNet 2.0); it is supplied from :data:`LEXNAMES`. METEOR never reads it. Without
  WordNet, scoring METEOR fails with :class:`WordNetMissingError`, saying how to install
  it: a METEOR without synonym matches would be a different metric under the same name.
- **Sentence splitting.** ``word_tokenize`` splits sentences with the Punkt model trained on
  English (nltk's ``punkt_tab`` data) before the Treebank word tokenizer runs on each.
  Here Punkt runs with its untrained parameters, then the same word tokenizer: the tokens
  differ only where the trained model knows an abbreviation ("Dr.", "e.g.") and so keeps
  its period inside the sentence. Both texts are tokenized alike, so such a period is one
  more matched token on either side.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.metrics.metric import ColumnMean, Metric
from tailor.registry import require

if TYPE_CHECKING:
    from tailor.metrics.scores import PerExampleScores

ALPHA = 0.9
"""The weight of precision against recall in METEOR's harmonic mean (nltk's and evaluate's default)."""
BETA = 3.0
"""The power of the fragmentation in METEOR's penalty."""
GAMMA = 0.5
"""The weight of METEOR's fragmentation penalty."""

WORDNET_ENVIRONMENT = "TAILOR_WORDNET"
DEBIAN_WORDNET = Path("/usr/share/wordnet")

# WordNet 3.0's lexicographer files (man 5 lexnames): number, name, part of speech
# (1 noun, 2 verb, 3 adjective, 4 adverb). The list is part of the database's definition.
_LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1), ("noun.animal", 1),
    ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1), ("noun.cognition", 1),
    ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1), ("noun.food", 1), ("noun.group", 1),
    ("noun.location", 1), ("noun.motive", 1), ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1),
    ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1), ("verb.body", 2),
    ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2), ("verb.competition", 2),
    ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
    ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2),
    ("adj.ppl", 3),
)
LEXNAMES = "".join(f"{number:02d}\t{name}\t{pos}\n" for number, (name, pos) in enumerate(_LEXNAMES))
"""The ``lexnames`` file of WordNet 3.0, as nltk's reader reads it."""

_DATABASE_FILES = ("index.noun", "data.noun", "index.verb", "data.verb", "index.adj", "data.adj", "index.adv",
                   "data.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc")


class WordNetMissingError(RuntimeError):
    """METEOR was asked for where no WordNet database can be found; says how to install one."""


def wordnet_folder() -> Path | str | None:
    """Where the WordNet database is read from: ``$TAILOR_WORDNET``, nltk's own data, or
    Debian's ``wordnet-base``; ``None`` when there is none. A folder set in the environment
    that holds no database is an error, not a reason to look elsewhere."""
    configured = os.environ.get(WORDNET_ENVIRONMENT)
    if configured:
        folder = Path(configured)
        missing = [name for name in _DATABASE_FILES if not (folder / name).is_file()]
        if missing:
            raise WordNetMissingError(f"${WORDNET_ENVIRONMENT} is {configured}, which lacks the WordNet files "
                                      f"{', '.join(missing)}")
        return folder
    nltk_data = require("nltk.data", "meteor")
    try:
        return str(nltk_data.find("corpora/wordnet"))
    except LookupError:
        pass
    if all((DEBIAN_WORDNET / name).is_file() for name in _DATABASE_FILES):
        return DEBIAN_WORDNET
    return None


@lru_cache(maxsize=1)
def load_wordnet() -> Any:
    """nltk's WordNet reader over :func:`wordnet_folder`, loaded once (it reads the indexes
    into memory, a second or two)."""
    folder = wordnet_folder()
    if folder is None:
        raise WordNetMissingError(
            "METEOR needs the WordNet 3.0 database and none was found (looked in "
            f"${WORDNET_ENVIRONMENT}, nltk's data path and {DEBIAN_WORDNET}). Install it with: "
            f"apt-get install wordnet-base (Debian, Ubuntu), or set {WORDNET_ENVIRONMENT} to a folder "
            "holding WordNet 3.0's database files (index.*, data.*, *.exc)")
    reader_module = require("nltk.corpus.reader.wordnet", "meteor")
    if isinstance(folder, Path):
        # nltk (3.9.3 on) reads corpora only under the folders of its data path: the database
        # folder joins it (nltk.data.find("corpora/...") looks for subfolders there, which a
        # WordNet folder does not have, so nothing else nltk finds changes).
        nltk_data = require("nltk.data", "meteor")
        if str(folder) not in map(str, nltk_data.path):
            nltk_data.path.append(str(folder))

    class OfflineWordNet(reader_module.WordNetCorpusReader):  # type: ignore[misc, name-defined]
        """nltk's reader of a WordNet 3.0 folder: its fixed ``lexnames`` supplied where the folder
        has none, no mapping to the multilingual wordnets."""

        def open(self, file: str) -> Any:
            if file == "lexnames":
                try:
                    self._root.join(file)  # a path pointer refuses a file that is not there
                except OSError:
                    return io.StringIO(LEXNAMES)
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            # nltk maps a database to WordNet 3.0 for the multilingual wordnets by reading its
            # own wordnet data package; this database is WordNet 3.0 and METEOR reads English.
            return None

    with warnings.catch_warnings():
        # Without the Open Multilingual Wordnet nltk warns that other languages are missing;
        # METEOR reads English only.
        warnings.simplefilter("ignore", UserWarning)
        return OfflineWordNet(str(folder), None)


@lru_cache(maxsize=1)
def _tokenizers() -> tuple[Any, Any]:
    punkt = require("nltk.tokenize.punkt", "meteor")
    tokenize = require("nltk.tokenize", "meteor")
    return punkt.PunktSentenceTokenizer(), tokenize.NLTKWordTokenizer()


def meteor_tokens(text: str) -> list[str]:
    """``text`` as METEOR reads it: sentences split by Punkt (untrained parameters), each
    tokenized by nltk's Treebank word tokenizer, as ``nltk.word_tokenize`` does."""
    sentences, words = _tokenizers()
    return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]


def meteor(prediction: str, gold: str) -> float:
    """METEOR of one prediction against its one reference, with LongLaMP's parameters."""
    scorer = require("nltk.translate.meteor_score", "meteor")
    return float(scorer.meteor_score([meteor_tokens(gold.strip())], meteor_tokens(prediction.strip()),
                                     wordnet=load_wordnet(), alpha=ALPHA, beta=BETA, gamma=GAMMA))


def meteor_values(predictions: Sequence[str], golds: Sequence[str], *, labels: Sequence[str] = (),
                  ids: Sequence[Any] | None = None) -> PerExampleScores:
    """METEOR per example (what the metric ``meteor`` reads)."""
    import numpy as np

    from tailor.metrics.scores import PerExampleScores, check_inputs

    check_inputs(predictions, golds, ids)
    values = np.array([meteor(prediction, gold) for prediction, gold in zip(predictions, golds)], dtype=np.float64)
    return PerExampleScores(kind="generation", columns={"meteor": values})


METEOR = Metric("meteor", "METEOR (nltk, as LongLaMP's evaluate metric: alpha 0.9, beta 3, gamma 0.5, WordNet "
                "synonyms), averaged over examples", meteor_values, ColumnMean("meteor"))
