"""``tailor adapters export``: a store's served adapters as PEFT folders for a multi-LoRA engine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tailor.cli import choices

FORMATS = ("peft",)


def add_adapters_verb(verbs: Any) -> None:
    """Add ``adapters`` (``export``) to the ``tailor`` command's verbs."""
    adapters = verbs.add_parser("adapters", help="the LoRA adapters a store serves: export them for vLLM or SGLang")
    actions = adapters.add_subparsers(dest="adapters_verb", metavar="ACTION")
    export = actions.add_parser("export", help="write every adapter that serves someone (a user's own, their "
                                "persona's, the global one) as a PEFT folder, for tailor serve --backend openai:URL "
                                "in front of an engine started with --enable-lora")
    export.add_argument("--store", required=True,
                        help="the store holding the adapters: a folder made by tailor train-adapter, a SQLite file "
                        f"(a path or sqlite:///path) or a URL. {choices.store_help()}")
    export.add_argument("--format", choices=FORMATS, default="peft",
                        help="peft (default): adapter_config.json and adapter_model.safetensors per folder")
    export.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the adapters (created; a rerun writes only what changed and removes the "
                        "folders that serve nobody now)")
    export.add_argument("--adapter-task", default="auto", metavar="TASK",
                        help="the task whose adapters to export, as tailor serve --adapter-task (default auto: the "
                        "one task the store has adapters for; chat: preference adapters and soups)")
    export.add_argument("--base-model", default=None, metavar="NAME",
                        help="base_model_name_or_path written in each adapter_config.json: the name the engine "
                        "serves the base model under (default: the path of the model the adapters were trained on)")
    export.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _open(location: str) -> Any:
    from tailor.adapters.store import open_adapter_store

    if "://" not in location and not Path(location).exists():
        raise FileNotFoundError(f"no store at {location}: give a folder made by tailor train-adapter, a SQLite "
                                "file or a URL")
    return open_adapter_store(location)


def run_adapters(args: argparse.Namespace) -> int:
    from tailor.adapters.export import ExportedAdapter, export_peft

    if args.adapters_verb is None:
        print("tailor adapters: choose an action: export", file=sys.stderr)
        return 2
    store = _open(args.store)

    def progress(adapter: ExportedAdapter) -> None:
        print(f"{adapter.name}: {adapter.status} ({adapter.adapter}, rank {adapter.rank}, {adapter.users} users)",
              file=sys.stderr, flush=True)

    try:
        report = export_peft(store, args.out, adapter_task=args.adapter_task, base_model_name=args.base_model,
                             progress=None if args.json else progress)
    finally:
        store.profiles.close()
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
        return 0
    if report.task is None:
        print(f"the store holds no LoRA adapters; nothing to export (manifest written to {report.out})")
        return 0
    written = sum(a.status == "written" for a in report.adapters)
    removed = f", {len(report.removed)} removed" if report.removed else ""
    print(f"{len(report.adapters)} adapters for task {report.task} in {report.out} ({written} written{removed}); "
          f"{report.users - report.base_users} of {report.users} users get one")
    if report.adapters:
        print(f"start the engine with --enable-lora --max-lora-rank {report.max_rank} (at least) and these adapters "
              f"(base model {report.base_model_name}); see docs/serving.md")
    return 0


__all__ = ["add_adapters_verb", "run_adapters"]
