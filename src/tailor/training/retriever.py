"""``tailor train-retriever``: a dense retriever trained from the model's own feedback (LaMP's
ROPG-KD, as distillation).

The teacher is ``tailor usefulness`` on the train split: for each question, the model's
log-likelihood gain on the gold output from each of the user's top items (BM25's top N).
The student is the embedder (all-MiniLM-L6-v2 unless ``base`` names another
sentence-transformers folder): its cosine similarities between the question's query and
those items, through a softmax, are pulled towards the softmax of the usefulness by a KL
divergence (sentence-transformers' ``DistillKLDivLoss`` in its trainer). The teacher's
temperature is the data's own spread: the median, over questions, of the standard deviation
of their items' usefulness, so that a typical question's target is neither uniform nor
one-hot whatever the task's scale; the student's is 0.05 (a cosine of 1 against 0 is then a
factor e^20, the scale of contrastive sentence-embedding training).

Only the train split is read: the usefulness file must have been measured on ``train`` of
the same data and task (its ``.run.json`` says so), and every question id in it must be one
of the train split's. The result is a model folder, ``dense:PATH`` (``hybrid:PATH``,
``recency+dense:PATH``) in ``tailor eval`` and ``tailor serve``, with
``tailor-retriever.json`` beside the weights: what it was trained on (the question ids), how,
and the name its vectors are stored under.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tailor.embeddings import TRAINED_METADATA as METADATA
from tailor.tasks import get_task
from tailor.tasks.spec import TaskSpec
from tailor.types import check_positive_ints

FIT_SPLIT = "train"
STUDENT_TEMPERATURE = 0.05


@dataclass(frozen=True)
class RetrieverTrainingConfig:
    """What ``tailor train-retriever`` trains (the keyword arguments of :func:`train_retriever`)."""

    task: str
    data: str
    useful: str
    """A ``tailor usefulness`` file measured on the data's train split."""
    out: str
    base: str | None = None
    """The starting sentence-transformers folder (``None``: the packaged all-MiniLM-L6-v2)."""
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    """Epochs and learning rate: the trainers' own defaults (sentence-transformers', Hugging Face's)."""
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_ints(self, ("epochs", "batch_size"))
        if not (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate)
                and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")


@dataclass(frozen=True)
class DistillationSet:
    """The training inputs: per question, the query, its candidate items' texts (best BM25
    first) and their usefulness; all questions have the same number of candidates."""

    ids: tuple[str, ...]
    queries: tuple[str, ...]
    documents: tuple[tuple[str, ...], ...]
    usefulness: tuple[tuple[float, ...], ...]
    dropped: int
    """Questions left out: another number of candidates than the most common, or every item
    equally useful (nothing to learn)."""

    @property
    def candidates(self) -> int:
        return len(self.documents[0]) if self.documents else 0

    def teacher_temperature(self) -> float:
        """The median, over questions, of the standard deviation of their items' usefulness."""
        spreads = [statistics.pstdev(values) for values in self.usefulness]
        spread = statistics.median(spreads) if spreads else 0.0
        return spread if spread > 0 else 1.0


def read_usefulness_rows(path: str | Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A usefulness file's settings (from ``PATH.run.json``) and its rows by question id,
    each question's items in BM25's order."""
    path = Path(path)
    meta_path = path.with_name(path.name + ".run.json")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such usefulness file (tailor usefulness --out writes one)")
    if not meta_path.is_file():
        raise ValueError(f"{path} has no {meta_path.name} beside it, so the split it was measured on is unknown; "
                         "measure it with tailor usefulness")
    settings = json.loads(meta_path.read_text(encoding="utf-8")).get("settings", {})
    rows: dict[str, list[dict[str, Any]]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.setdefault(str(row["id"]), []).append(
                {"item": str(row["item"]), "usefulness": float(row["usefulness"]), "rank": int(row["rank"])})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}, line {number}: not a usefulness row ({error})") from error
    for items in rows.values():
        items.sort(key=lambda item: item["rank"])
    return settings, rows


def distillation_set(task: TaskSpec, data: str | Path, useful: str | Path) -> DistillationSet:
    """The training inputs of ``useful`` (measured on ``data``'s train split: refused otherwise)."""
    settings, rows = read_usefulness_rows(useful)
    if settings.get("split") != FIT_SPLIT:
        raise ValueError(f"{useful} was measured on the {settings.get('split')!r} split; a retriever is trained on "
                         f"the {FIT_SPLIT} split only (tailor usefulness --split {FIT_SPLIT})")
    if settings.get("task") not in (None, task.name) and get_task(str(settings["task"])).name != task.name:
        raise ValueError(f"{useful} was measured for task {settings['task']}, not {task.name}")
    if settings.get("data") and Path(str(settings["data"])).resolve() != Path(data).resolve():
        raise ValueError(f"{useful} was measured on {settings['data']}, not {Path(data).resolve()}")
    examples = {example.id: example for example in task.load(data, FIT_SPLIT)}
    unknown = sorted(set(rows) - set(examples))
    if unknown:
        raise ValueError(f"{useful}: question {unknown[0]!r} is not in {data}'s {FIT_SPLIT} split "
                         f"({len(unknown)} such questions)")
    counts = Counter(len(items) for items in rows.values())
    size = max(counts, key=lambda count: (counts[count], count)) if counts else 0
    ids, queries, documents, usefulness = [], [], [], []
    for question, items in rows.items():
        values = [item["usefulness"] for item in items]
        if len(items) != size or size < 2 or max(values) == min(values):
            continue
        example = examples[question]
        records = {record.id: record for record in example.profile.records}
        missing = [item["item"] for item in items if item["item"] not in records]
        if missing:
            raise ValueError(f"{useful}: item {missing[0]!r} of question {question!r} is not in its profile")
        ids.append(question)
        queries.append(task.query(example.input))
        documents.append(tuple(task.document(records[item["item"]]) for item in items))
        usefulness.append(tuple(values))
    return DistillationSet(tuple(ids), tuple(queries), tuple(documents), tuple(usefulness),
                           dropped=len(rows) - len(ids))


def train_retriever(config: RetrieverTrainingConfig) -> dict[str, Any]:
    """Train the retriever of ``config`` and save it to ``config.out`` (a folder written
    whole or not at all); returns its metadata (also in ``METADATA`` there)."""
    task = get_task(config.task)
    inputs = distillation_set(task, config.data, config.useful)
    if len(inputs.ids) < 2:
        raise ValueError(f"{config.useful}: {len(inputs.ids)} usable questions (at least 2 with differing usefulness "
                         "are needed); measure more with tailor usefulness --limit")
    from tailor.registry import require

    require("torch", "dense")
    require("datasets", "select")
    require("accelerate", "select")
    sentence_transformers = require("sentence_transformers", "dense")
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss
    from sentence_transformers.util import pairwise_cos_sim

    from tailor.embeddings.minilm import minilm_path, offline

    offline()
    base = Path(config.base) if config.base is not None else minilm_path()
    model = sentence_transformers.SentenceTransformer(str(base), device="cpu")
    teacher = inputs.teacher_temperature()
    columns: dict[str, list[Any]] = {"query": list(inputs.queries)}
    for place in range(inputs.candidates):
        columns[f"item_{place}"] = [documents[place] for documents in inputs.documents]
    columns["label"] = [list(values) for values in inputs.usefulness]
    dataset = Dataset.from_dict(columns)
    loss = DistillKLDivLoss(model, similarity_fct=pairwise_cos_sim, student_temperature=STUDENT_TEMPERATURE,
                            teacher_temperature=teacher)
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as scratch:
        arguments = sentence_transformers.SentenceTransformerTrainingArguments(
            output_dir=str(Path(scratch) / "trainer"), num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
            seed=config.seed, data_seed=config.seed, save_strategy="no", report_to=[],
            logging_steps=max(1, len(dataset) // config.batch_size), use_cpu=True, dataloader_num_workers=0)
        trainer = sentence_transformers.SentenceTransformerTrainer(model=model, args=arguments,
                                                                    train_dataset=dataset, loss=loss)
        result = trainer.train()
        seconds = time.perf_counter() - began
        folder = Path(scratch) / "model"
        model.save(str(folder))
        digest = hashlib.sha256(json.dumps({"ids": inputs.ids, "settings": asdict(config) | {"out": None}},
                                           sort_keys=True).encode()).hexdigest()[:12]
        metadata = {
            "name": f"ropg-{task.name}-{digest}",
            "task": task.name, "data": str(Path(config.data).resolve()), "useful": str(Path(config.useful).resolve()),
            "split": FIT_SPLIT, "question_ids": list(inputs.ids), "questions": len(inputs.ids),
            "dropped": inputs.dropped, "candidates": inputs.candidates,
            "base": str(config.base) if config.base is not None else "all-MiniLM-L6-v2",
            "loss": "KL(softmax(usefulness / teacher) || softmax(cosine / student))",
            "teacher_temperature": round(teacher, 6), "student_temperature": STUDENT_TEMPERATURE,
            "epochs": config.epochs, "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "seed": config.seed, "train_loss": round(float(result.training_loss), 6),
            "train_seconds": round(seconds, 2),
        }
        (folder / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            if not (out / METADATA).is_file():
                raise ValueError(f"{out} exists and is not a retriever trained by tailor; use another --out")
            stale = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, stale)
            os.replace(folder, out)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.replace(folder, out)
    return metadata


__all__ = ["FIT_SPLIT", "METADATA", "DistillationSet", "RetrieverTrainingConfig", "distillation_set",
           "read_usefulness_rows", "train_retriever"]
