"""The hyper-parameters of the classic recommenders and of the reranker, chosen on the
validation split only (the numbers docs/results-recommendation.md reports and the defaults
the methods use):

    python benchmarks/recommenders.py ranking --data DIR   # popular, item-knn, als, bpr (implicit)
    python benchmarks/recommenders.py ratings --data DIR   # item-mean, svd (scikit-surprise)
    python benchmarks/recommenders.py rerank RUN           # the reranker's weight
    python benchmarks/recommenders.py moves RUN            # where the reranker moved the held-out movies

``ranking`` reads a folder that ``tailor data build movielens-next`` wrote and scores each
setting on its ``dev`` split (each user's second-to-last movie), sampled-99 and full
ranking, fitted as ``tailor eval`` fits (every user's history before the held-out movie);
the rule: per model, the setting with the best sampled NDCG@10. ``ratings`` reads a
``tailor data build movielens-ratings`` folder and scores each setting on its ``train``
questions (the two ratings before each user's dev questions); the rule: the lowest MAE.
``rerank`` reads a ``tailor eval --split dev`` run of a reranker (``als+bm25``: each
prediction keeps its head's two stage scores) and mixes them with every weight of the grid
(:func:`tailor.personalizers.ranking.mix`); the rule: the weight with the best NDCG@10 if
its paired 95% interval against weight 0 (the first stage's order) lies above 0, else 0:
the model's scores count only where validation shows they help. The test split is never
read for a choice (``moves`` reads any run, to show where the model moves the held-out
movies, and chooses nothing).

Prints Markdown tables, the chosen setting and whether it is the default in use.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# implicit's own loops are the parallel part; BLAS threads on top only contend.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np

from tailor.metrics.ranking import example_metrics
from tailor.personalizers.labels import RatingModelPersonalizer
from tailor.personalizers.ranking import RERANK_WEIGHT, RecommenderRanker, mix
from tailor.recommenders.models import ALS, BPR, ItemKNN, Popularity, Recommender
from tailor.recommenders.ratings import SVD, ItemMean, RatingModel
from tailor.store import InMemoryProfileStore, ingest_examples
from tailor.tasks import get_task

WEIGHTS: tuple[float | None, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, None)
"""The reranker's weights tried (``None``: the model's order alone)."""


def ranking_settings() -> list[tuple[str, Callable[[], Recommender]]]:
    """Every setting tried, as (description, model factory)."""
    settings: list[tuple[str, Callable[[], Recommender]]] = [("popular", Popularity)]
    for similarity, neighbours in itertools.product(("bm25", "cosine"), (20, 50, 100, 200)):
        settings.append((f"item-knn similarity={similarity} neighbours={neighbours}",
                         lambda s=similarity, n=neighbours: ItemKNN(neighbours=n, similarity=s)))
    for factors, regularization, alpha in itertools.product((16, 32, 64, 128), (0.01, 0.05, 0.1), (1.0, 5.0)):
        settings.append((f"als factors={factors} regularization={regularization} alpha={alpha}",
                         lambda f=factors, r=regularization, a=alpha: ALS(factors=f, regularization=r, alpha=a)))
    for factors, learning_rate in itertools.product((16, 32, 64, 128), (0.01, 0.05)):
        settings.append((f"bpr factors={factors} learning_rate={learning_rate}",
                         lambda f=factors, lr=learning_rate: BPR(factors=f, learning_rate=lr)))
    return settings


def _ndcg(ranked: Sequence[str], gold: str) -> float:
    return example_metrics(ranked, {gold}, cutoffs=(10,))["ndcg@10"]


def ranking(data: Path) -> None:
    """Every setting of :func:`ranking_settings` on the dev split, both protocols."""
    sampled_task, full_task = get_task("movielens-next"), get_task("movielens-next-full")
    sampled = sampled_task.load(data, "dev")
    full = full_task.load(data, "dev")
    store = InMemoryProfileStore()
    ingest_examples(store, sampled)
    question = getattr(sampled_task, "question", "")
    print(f"movielens-next dev split, n = {len(sampled)} users; NDCG@10 (sampled-99 / full ranking); "
          f"{platform.machine()}, {os.cpu_count()} cores\n")
    print("| setting | NDCG@10 sampled | NDCG@10 full | fit + scoring s |")
    print("|---|---|---|---|")
    best: dict[str, tuple[float, str]] = {}
    for description, factory in ranking_settings():
        began = time.perf_counter()
        ranker = RecommenderRanker(description, factory(), store)
        values = []
        for task, examples in ((sampled_task, sampled), (full_task, full)):
            ranked = ranker.rank_batch(task, [(question, e.profile, e.candidates) for e in examples])
            values.append(float(np.mean([_ndcg(r.items, e.gold or "") for r, e in zip(ranked, examples)])))
        seconds = time.perf_counter() - began
        print(f"| {description} | {values[0]:.4f} | {values[1]:.4f} | {seconds:.1f} |", flush=True)
        family = description.split()[0]
        if values[0] > best.get(family, (-1.0, ""))[0]:
            best[family] = (values[0], description)
    print("\nchosen (best sampled NDCG@10 per model; defaults in tailor.methods.recommenders):")
    for family, (value, description) in best.items():
        print(f"- {description}: {value:.4f}")


def ratings_settings() -> list[tuple[str, Callable[[], RatingModel]]]:
    """Every rating model setting tried."""
    settings: list[tuple[str, Callable[[], RatingModel]]] = [
        (f"item-mean shrinkage={s}", lambda s=s: ItemMean(shrinkage=s)) for s in (0.0, 1.0, 2.0, 5.0, 10.0, 25.0)]
    for factors, regularization, learning_rate in itertools.product((10, 50, 100, 200), (0.05, 0.1, 0.2),
                                                                    (0.01, 0.02, 0.05)):
        settings.append((f"svd factors={factors} regularization={regularization} learning_rate={learning_rate}",
                         lambda f=factors, r=regularization, lr=learning_rate:
                         SVD(factors=f, regularization=r, learning_rate=lr)))
    return settings


def ratings(data: Path) -> None:
    """Every setting of :func:`ratings_settings` on movielens-ratings' train questions."""
    task = get_task("movielens-ratings")
    examples = task.load(data, "train")
    store = InMemoryProfileStore()
    ingest_examples(store, examples)
    golds = [e.gold or "" for e in examples]
    print(f"movielens-ratings train questions (the validation split), n = {len(examples)}; "
          f"{platform.machine()}, {os.cpu_count()} cores\n")
    print("| setting | MAE | RMSE | fit + predict s |")
    print("|---|---|---|---|")
    best: dict[str, tuple[float, str]] = {}
    for description, factory in ratings_settings():
        began = time.perf_counter()
        personalizer = RatingModelPersonalizer(description, factory(), store)
        answers = [personalizer.personalize(task, e.input, e.profile).answer or "" for e in examples]
        metrics = task.score(answers, golds).aggregate()
        print(f"| {description} | {metrics['mae']:.4f} | {metrics['rmse']:.4f} | "
              f"{time.perf_counter() - began:.1f} |", flush=True)
        family = description.split()[0]
        if metrics["mae"] < best.get(family, (math.inf, ""))[0]:
            best[family] = (metrics["mae"], description)
    print("\nchosen (lowest MAE per model; defaults in tailor.methods.labels):")
    for family, (value, description) in best.items():
        print(f"- {description}: {value:.4f}")


def _rows(run: Path, method: str) -> tuple[list[dict[str, Any]], dict[str, str], str]:
    results = json.loads((run / "results.json").read_text())
    config = results["config"]
    if config["split"] == "test":
        raise SystemExit(f"{run} is a test-split run: the weight is chosen on validation (dev) only")
    task = get_task(config["task"])
    golds = task.read_outputs(Path(config["data"]) / f"{config['split']}_outputs.json")
    path = run / "predictions" / f"{method.replace('+', '-')}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows or "stages" not in rows[0]:
        raise SystemExit(f"{path} holds no stage scores: run a reranker (als+bm25) with this version")
    return rows, golds, config["split"]


def rerank(run: Path, method: str, cold: int) -> None:
    """The reranker's NDCG@10 at every weight of :data:`WEIGHTS`, from a dev run's predictions."""
    rows, golds, split = _rows(run, method)
    by_weight: dict[float | None, list[float]] = {weight: [] for weight in WEIGHTS}
    is_cold = [row["profile_size"] <= cold for row in rows]
    for row in rows:
        ranked = json.loads(row["output"])
        first, model = row["stages"]["first"], row["stages"]["model"]
        head, tail = ranked[:len(first)], ranked[len(first):]
        for weight in WEIGHTS:
            scores = mix(first, model, weight)
            order = sorted(range(len(head)), key=lambda place: -scores[place])
            by_weight[weight].append(_ndcg([head[place] for place in order] + tail, golds[row["id"]]))
    baseline = np.array(by_weight[0.0])
    n_cold = sum(is_cold)
    print(f"{run}: {method} on the {split} split, n = {len(rows)} users ({n_cold} cold: at most {cold} history "
          "items); NDCG@10 of the head reordered by mix(first, model, weight)\n")
    print("| weight | NDCG@10 | vs weight 0 (the first stage) [95% CI] | cold users |")
    print("|---|---|---|---|")
    generator = np.random.default_rng(0)
    resamples = generator.integers(0, len(rows), size=(1000, len(rows)))
    best_weight, best_value, best_low = WEIGHTS[0], -1.0, 0.0
    for weight in WEIGHTS:
        values = np.array(by_weight[weight])
        deltas = (values - baseline)[resamples].mean(axis=1)
        low, high = np.percentile(deltas, [2.5, 97.5])
        cold_value = values[np.array(is_cold)].mean() if n_cold else math.nan
        label = "model alone" if weight is None else f"{weight:g}"
        print(f"| {label} | {values.mean():.4f} | {values.mean() - baseline.mean():+.4f} [{low:+.4f}, {high:+.4f}] | "
              f"{cold_value:.4f} |")
        if values.mean() > best_value + 1e-12:
            best_weight, best_value, best_low = weight, float(values.mean()), float(low)
    label = "the model alone" if best_weight is None else f"{best_weight:g}"
    # The model's scores get a weight only where they help beyond chance on validation.
    chosen = best_weight if best_low > 0 else 0.0
    reason = ("its paired interval against weight 0 lies above 0" if best_low > 0 else
              f"the best, {label} (NDCG@10 {best_value:.4f}), does not beat weight 0 beyond chance")
    print(f"\nchosen: weight {'the model alone' if chosen is None else f'{chosen:g}'} ({reason}); "
          f"tailor.personalizers.ranking.RERANK_WEIGHT is {RERANK_WEIGHT}{'' if chosen == RERANK_WEIGHT else ' (differs)'}")


def _words(title: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", title.lower()))


def _spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(np.asarray(values, dtype=float))) for values in (a, b)]
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


def _read_run(run: Path, method: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, int], list[dict[str, Any]]]:
    """A run's config, its examples by id, each item's popularity (history records naming
    it, over the run's examples) and ``method``'s prediction rows."""
    config = json.loads((run / "results.json").read_text())["config"]
    examples = {e.id: e for e in get_task(config["task"]).load(config["data"], config["split"])}
    popularity: dict[str, int] = {}
    for example in examples.values():
        for record in example.profile.records:
            popularity[record.fields["item"]] = popularity.get(record.fields["item"], 0) + 1
    path = run / "predictions" / f"{method.replace('+', '-')}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return config, examples, popularity, rows


def moves(run: Path, method: str, count: int, weight: float | None) -> None:
    """Where the model moves each held-out movie within a reranker's head when the head is
    ordered by :func:`mix` at ``weight`` (``None``: the model's scores alone), against the
    first stage's order, from a run's predictions (any split: this reads a run and chooses
    nothing): NDCG@10 both ways, how often the movie rose or fell, its mean place by the
    model against chance, what the model's scores follow, and the users with the largest
    falls and rises with what their prompt showed."""
    config, examples, popularity, rows = _read_run(run, method)
    titles = {c.fields["item"]: c.fields["title"] for e in examples.values() for c in e.candidates}
    path = run / "predictions" / f"{method.replace('+', '-')}.jsonl"
    if not rows or "stages" not in rows[0]:
        raise SystemExit(f"{path} holds no stage scores: run a reranker (als+bm25) with this version")
    falls, rises, kept = [], [], 0
    places: dict[str, list[float]] = {"model": [], "first": [], "chance": []}
    ndcg: dict[str, list[float]] = {"first": [], "mixed": []}
    correlations: dict[str, list[float]] = {"first stage": [], "popularity": [], "title length": []}
    echoes: dict[bool, list[float]] = {True: [], False: []}
    for row in rows:
        gold = examples[row["id"]].gold or ""
        records = {r.id: r for r in examples[row["id"]].profile.records}
        shown_words = {w for r in row["retrieved"] if r in records
                       for w in _words(records[r].fields.get("title", ""))}
        first, model = row["stages"]["first"], row["stages"]["model"]
        ranked = json.loads(row["output"])
        head, tail = ranked[:len(first)], ranked[len(first):]
        by_first = [head[p] for p in sorted(range(len(head)), key=lambda place: -first[place])]
        mixed_scores = mix(first, model, weight)
        by_mix = [head[p] for p in sorted(range(len(head)), key=lambda place: -mixed_scores[place])]
        by_model = [head[p] for p in sorted(range(len(head)), key=lambda place: -model[place])]
        ndcg["first"].append(_ndcg(by_first + tail, gold))
        ndcg["mixed"].append(_ndcg(by_mix + tail, gold))
        correlations["first stage"].append(_spearman(first, model))
        correlations["popularity"].append(_spearman([popularity.get(i, 0) for i in head], model))
        correlations["title length"].append(_spearman([len(titles.get(i, i)) for i in head], model))
        standardized = (np.asarray(model) - np.mean(model)) / (np.std(model) or 1.0)
        for item, value in zip(head, standardized):
            echoes[bool(_words(titles.get(item, item)) & shown_words)].append(float(value))
        if gold not in head:
            continue
        before, after = by_first.index(gold) + 1, by_mix.index(gold) + 1
        places["first"].append(before)
        places["model"].append(by_model.index(gold) + 1)
        places["chance"].append((len(head) + 1) / 2)
        entry = (ndcg["mixed"][-1] - ndcg["first"][-1], row, gold, before, after, by_mix,
                 dict(zip(head, model)))
        if after > before:
            falls.append(entry)
        elif after < before:
            rises.append(entry)
        else:
            kept += 1
    order = "the model's scores alone" if weight is None else f"mix(first, model, {weight:g})"
    print(f"{run}: {method}'s head ({len(rows[0]['stages']['first'])} first-stage items) ordered by {order}, "
          f"{config['split']} split, n = {len(rows)} users; the held-out movie is in the head for "
          f"{len(places['first'])}\n")
    differences = np.array(ndcg["mixed"]) - np.array(ndcg["first"])
    resamples = np.random.default_rng(0).integers(0, len(rows), size=(1000, len(rows)))
    low, high = np.percentile(differences[resamples].mean(axis=1), [2.5, 97.5])
    print(f"- NDCG@10: {np.mean(ndcg['mixed']):.4f} against the first stage's order {np.mean(ndcg['first']):.4f} "
          f"({differences.mean():+.4f} [{low:+.4f}, {high:+.4f}], paired 95% bootstrap interval)")
    print(f"- the held-out movie moved down for {len(falls)} users, up for {len(rises)}, kept its place for {kept}")
    print(f"- its mean place in the head (1 = first): by the model's scores {np.mean(places['model']):.2f}, by the "
          f"first stage's {np.mean(places['first']):.2f}, at random {np.mean(places['chance']):.2f}")
    print("- mean rank correlation (Spearman) of the model's scores within a head with: " + ", ".join(
        f"{name} {np.nanmean(values):+.3f}" for name, values in correlations.items()))
    print(f"- the model's standardized score of a head item whose title shares a word with a title the prompt "
          f"showed: {np.mean(echoes[True]):+.3f} ({len(echoes[True])} items), of the others: "
          f"{np.mean(echoes[False]):+.3f} ({len(echoes[False])})")
    for label, entries in (("largest falls", sorted(falls, key=lambda e: e[0])[:count]),
                           ("largest rises", sorted(rises, key=lambda e: -e[0])[:count])):
        print(f"\n{label}:")
        for change, row, gold, before, after, by_mix, model_scores in entries:
            example = examples[row["id"]]
            shown = {r.id: r for r in example.profile.records}
            above = [f"{titles.get(i, i)} ({model_scores[i]:+.2f})" for i in by_mix[:after - 1]][:4]
            print(f"- user {example.user_id} ({row['profile_size']} movies before): held-out "
                  f"{titles.get(gold, gold)!r}, place {before} -> {after} (NDCG@10 {change:+.3f}), model score "
                  f"{model_scores[gold]:+.2f}; now above it: {', '.join(above) or 'none'}; the prompt showed: "
                  f"{'; '.join(shown[r].fields.get('text', r) for r in row['retrieved'] if r in shown)}")


TABLE_RUNS = (("classic-sampled", "every user"), ("classic-full", "every user"),
              ("llm-sampled", "first users"), ("llm-full", "first users"), ("llm-alone", "first users"),
              ("cold", "cold users"), ("lora", "first users"))


def _interval(values: np.ndarray, resamples: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values[resamples].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def _paired(values: dict[str, float], reference: dict[str, float] | None) -> str:
    """The mean difference of ``values`` from ``reference`` on the users of both, with its
    paired 95% bootstrap interval ("" without a reference)."""
    if not reference:
        return ""
    both = [user for user in sorted(values) if user in reference]
    differences = np.array([values[user] - reference[user] for user in both])
    resamples = np.random.default_rng(0).integers(0, len(both), size=(1000, len(both)))
    low, high = _interval(differences, resamples)
    return f"{differences.mean():+.4f} [{low:+.4f}, {high:+.4f}]"


def table(runs: Path, versus: str) -> None:
    """One table of every method of the test-split runs under ``runs`` (the script's names,
    :data:`TABLE_RUNS`): NDCG@10, HR@10 and MRR with 95% bootstrap intervals over users,
    NDCG@10 against ``versus`` on the same users (paired), the model's own order of the
    reranked head where a method reranks, and seconds per user."""
    print(f"| run: users | protocol | method | n | NDCG@10 [95% CI] | HR@10 = Recall@10 [95% CI] | MRR [95% CI] | "
          f"Δ NDCG@10 vs {versus}, same users [95% CI] | the model's order of the head alone: NDCG@10 (Δ vs {versus}) | s/user |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, who in TABLE_RUNS:
        run = runs / name
        if not (run / "results.json").exists():
            continue
        results = json.loads((run / "results.json").read_text())
        config = results["config"]
        task = get_task(config["task"])
        golds = task.read_outputs(Path(config["data"]) / f"{config['split']}_outputs.json")
        protocol = "full" if config["task"].endswith("-full") else "sampled-99"
        per_user: dict[str, dict[str, float]] = {}
        alone: dict[str, dict[str, float]] = {}
        for entry in results["results"]:
            method = entry["method"]
            path = run / "predictions" / f"{method.replace('+', '-')}.jsonl"
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            per_user[method] = {row["id"]: _ndcg(json.loads(row["output"]), golds[row["id"]]) for row in rows}
            if rows and "stages" in rows[0]:
                values = {}
                for row in rows:
                    ranked = json.loads(row["output"])
                    first, model = row["stages"]["first"], row["stages"]["model"]
                    head, tail = ranked[:len(first)], ranked[len(first):]
                    scores = mix(first, model, None)
                    order = sorted(range(len(head)), key=lambda place: -scores[place])
                    values[row["id"]] = _ndcg([head[place] for place in order] + tail, golds[row["id"]])
                alone[method] = values
        for entry in results["results"]:
            method, metrics, ci = entry["method"], entry["metrics"], entry["ci95"]
            ids = sorted(per_user[method])
            n = len(ids)
            delta = _paired(per_user[method], per_user.get(versus)) if method != versus else ""
            model_alone = ""
            if method in alone:
                model_alone = f"{np.mean(list(alone[method].values())):.4f}"
                compared = _paired(alone[method], per_user.get(versus))
                model_alone += f" ({compared})" if compared else ""
            seconds = entry.get("seconds")
            print(f"| {name}: {who} | {protocol} | {method} | {n} | {metrics['ndcg@10']:.4f} "
                  f"[{ci['ndcg@10'][0]:.4f}, {ci['ndcg@10'][1]:.4f}] | {metrics['hitrate@10']:.4f} "
                  f"[{ci['hitrate@10'][0]:.4f}, {ci['hitrate@10'][1]:.4f}] | {metrics['mrr']:.4f} "
                  f"[{ci['mrr'][0]:.4f}, {ci['mrr'][1]:.4f}] | {delta} | {model_alone} | "
                  f"{'' if seconds is None else f'{seconds / max(n, 1):.3f}'} |")


def held_out(run: Path, method: str) -> None:
    """Where a method that ranks every candidate by the model (no first stage, e.g. ``bm25``)
    puts the held-out movie, from a run's predictions: its mean place against chance and
    against popularity's order, its mean standardized score, and what the scores follow."""
    config, examples, popularity, rows = _read_run(run, method)
    places: dict[str, list[float]] = {"model": [], "popularity": [], "chance": []}
    standardized: list[float] = []
    correlations: dict[str, list[float]] = {"popularity": [], "title length": []}
    for row in rows:
        example = examples[row["id"]]
        gold = example.gold or ""
        titles = {c.fields["item"]: c.fields.get("title", c.fields["item"]) for c in example.candidates}
        ranked, scores = json.loads(row["output"]), np.asarray(row["scores"], dtype=float)
        if gold not in ranked or len(scores) != len(ranked):
            continue
        places["model"].append(ranked.index(gold) + 1)
        by_popularity = sorted(ranked, key=lambda item: -popularity.get(item, 0))
        places["popularity"].append(by_popularity.index(gold) + 1)
        places["chance"].append((len(ranked) + 1) / 2)
        standardized.append(float((scores[ranked.index(gold)] - scores.mean()) / (scores.std() or 1.0)))
        correlations["popularity"].append(_spearman(scores, [popularity.get(i, 0) for i in ranked]))
        correlations["title length"].append(_spearman(scores, [len(titles.get(i, i)) for i in ranked]))
    print(f"{run}: {method}, {config['split']} split, n = {len(places['model'])} users; "
          f"{rows[0]['candidates'] if rows else 0} candidates each\n")
    print(f"- the held-out movie's mean place (1 = first): by the model {np.mean(places['model']):.2f}, by "
          f"popularity {np.mean(places['popularity']):.2f}, at random {np.mean(places['chance']):.2f}")
    print(f"- its mean standardized score among the candidates: {np.mean(standardized):+.3f}")
    print("- mean rank correlation (Spearman) of the model's scores with: " + ", ".join(
        f"{name} {np.nanmean(values):+.3f}" for name, values in correlations.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("ranking", "ratings"):
        command = commands.add_parser(name)
        command.add_argument("--data", required=True, type=Path)
    command = commands.add_parser("rerank")
    command.add_argument("run", type=Path, help="a tailor eval --split dev run folder")
    command.add_argument("--method", default="als+bm25")
    command.add_argument("--cold", type=int, default=20, help="cold users: at most this many history items")
    command = commands.add_parser("moves", help="where a reranker moved the held-out movies (reads, chooses nothing)")
    command.add_argument("run", type=Path, help="a tailor eval run folder")
    command.add_argument("--method", default="als+bm25")
    command.add_argument("--count", type=int, default=3, help="users shown among the largest falls and rises")
    command.add_argument("--weight", type=float, default=None,
                         help="order the head by mix(first, model, WEIGHT) (default: the model's scores alone)")
    command = commands.add_parser("held-out", help="where a model-only ranker put the held-out movies")
    command.add_argument("run", type=Path, help="a tailor eval run folder")
    command.add_argument("--method", default="bm25")
    command = commands.add_parser("table", help="one table of every test-split run of scripts/results-recommendation.sh")
    command.add_argument("runs", type=Path, help="the script's RUNS_DIR")
    command.add_argument("--versus", default="als", help="the method compared with on the same users (default als)")
    args = parser.parse_args(argv)
    if args.command == "table":
        table(args.runs, args.versus)
    elif args.command == "held-out":
        held_out(args.run, args.method)
    elif args.command == "ranking":
        ranking(args.data)
    elif args.command == "ratings":
        ratings(args.data)
    elif args.command == "rerank":
        rerank(args.run, args.method, args.cold)
    else:
        moves(args.run, args.method, args.count, args.weight)
    return 0


if __name__ == "__main__":
    sys.exit(main())
