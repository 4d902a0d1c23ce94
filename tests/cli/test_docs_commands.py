"""Every `tailor ...` command line written in README.md and docs/*.md parses with the real
parser: the subcommand exists, every option exists and takes the value written.

Commands are read from code blocks (fenced or indented; a line ending in a backslash
continues on the next) and from inline code. Placeholders (``DIR``, ``FILE``, ``N``,
``$runs``...) stand for any valid value. Inline code may mention a command without its
required options (`tailor serve --method`), so required options are not asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tailor.cli.main import build_parser

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE = re.compile(r"`([^`]+)`")
_PLACEHOLDER = re.compile(r"^(?:\$\S*|[A-Z][A-Z0-9_]*(?:[-,:+][A-Z0-9_]+)*(?:,?\.\.\.)?)$")
# What a placeholder may stand for, tried in turn against an option's type.
_SAMPLES = ("1", "bm25", "default", "x")


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str
    inline: bool

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def commands_in(text: str, doc: str = "<doc>") -> Iterator[Command]:
    """The `tailor ...` commands of a Markdown text: each segment of a code line (or inline
    code span) whose command word is ``tailor`` (``.venv/bin/tailor``, ``$tailor``...)."""
    lines = text.splitlines()
    prose: list[tuple[int, str]] = []
    fenced = False
    previous_blank = True
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        if _FENCE.match(line):
            fenced = not fenced
            index += 1
            continue
        indented = line.startswith(("    ", "\t")) and (previous_blank or _in_code(lines, index))
        if fenced or (indented and line.strip()):
            code = line
            while code.rstrip().endswith("\\") and index + 1 < len(lines):
                index += 1
                code = code.rstrip()[:-1] + " " + lines[index].strip()
            yield from _segments(code, doc, number, inline=False)
        else:
            prose.append((number, line))
        previous_blank = not line.strip()
        index += 1
    # Inline code may wrap across lines within a paragraph.
    joined = "\n".join(text for _, text in prose)
    starts = []
    offset = 0
    for number, text_line in prose:
        starts.append((offset, number))
        offset += len(text_line) + 1
    for match in _INLINE.finditer(joined):
        number = max(n for start, n in starts if start <= match.start())
        yield from _segments(match.group(1).replace("\n", " "), doc, number, inline=True)


def _in_code(lines: list[str], index: int) -> bool:
    """Whether the indented line at ``index`` continues an indented code block."""
    back = index - 1
    while back >= 0 and not lines[back].strip():
        back -= 1
    start = back
    while start >= 0 and lines[start].startswith(("    ", "\t")):
        start -= 1
    return back >= 0 and lines[back].startswith(("    ", "\t")) and (start < 0 or not lines[start].strip()
                                                                       or start < back)


def _segments(code: str, doc: str, number: int, *, inline: bool) -> Iterator[Command]:
    code = re.sub(r"(^|\s)#.*$", "", code)  # a shell comment
    for segment in re.split(r"&&|\|\||;|\s\|\s|\s&(?:\s|$)", code):
        words = segment.strip().split(None, 1)
        if words and (words[0] in ("tailor", "$tailor") or words[0].endswith("/bin/tailor")):
            yield Command(doc, number, segment.strip(), inline)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _optional_everything(parser: argparse.ArgumentParser) -> None:
    """Ask for no required option or subcommand: inline code mentions commands in part."""
    for action in parser._actions:
        action.required = False
    for group in parser._mutually_exclusive_groups:
        group.required = False
    for sub in _subcommands(parser).values():
        _optional_everything(sub)


def _sample(action: argparse.Action, placeholder: str) -> str:
    """A value ``action`` accepts, for a placeholder."""
    if action.choices:
        return str(next(iter(action.choices)))
    if action.type is None:
        return placeholder
    for sample in (*_SAMPLES, placeholder):
        try:
            action.type(sample)  # type: ignore[operator]
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            continue
        return sample
    return placeholder


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs not in (0, "?", "*") and not isinstance(action, argparse._SubParsersAction)


def check(command: Command) -> str | None:
    """Why ``command`` does not parse, or ``None`` when it does."""
    parser = build_parser()
    _optional_everything(parser)
    try:
        # [optional] and (alternative) parts are written out; "..." elides what does not matter.
        tokens = shlex.split(re.sub(r"[][()]", " ", command.text))
    except ValueError as error:
        return f"cannot be split into words: {error}"
    tokens = tokens[1:]  # after the command word
    current, arguments, waiting = parser, [], None
    for token in tokens:
        elided = token in ("...", "…")
        if waiting is not None:
            arguments.append(_sample(waiting, token) if elided or _PLACEHOLDER.match(token) else token)
            waiting = None
            continue
        if elided:
            continue
        option = token.split("=", 1)[0]
        if token.startswith("-") and option in current._option_string_actions:
            action = current._option_string_actions[option]
            if "=" in token:
                value = token.split("=", 1)[1]
                arguments.append(f"{option}={_sample(action, value) if _PLACEHOLDER.match(value) else value}")
            else:
                arguments.append(token)
                waiting = action if _takes_value(action) else None
            continue
        subcommands = _subcommands(current)
        if token in subcommands:
            current = subcommands[token]
        arguments.append(token)
    if waiting is not None and command.inline:
        arguments.append(_sample(waiting, "X"))  # an option named in passing, without its value
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(arguments)
    except SystemExit as stop:
        if stop.code in (0, None):  # --version, --help
            return None
        message = errors.getvalue().strip()
        return message.splitlines()[-1] if message else f"exit status {stop.code}"
    return None


def _documented() -> list[Command]:
    return [c for doc in DOCS for c in commands_in(doc.read_text(encoding="utf-8"), str(doc.relative_to(ROOT)))]


def test_the_docs_name_commands() -> None:
    found = _documented()
    assert len(found) > 50
    assert {Path(c.doc).name for c in found} >= {"README.md", "results.md", "serving.md"}


def test_every_documented_command_parses() -> None:
    failures = [f"{command}\n    -> {error}" for command in _documented() if (error := check(command))]
    assert not failures, "commands in the docs that tailor does not accept:\n" + "\n".join(failures)


def test_the_checker_catches_a_missing_command_or_option() -> None:
    doc = """# A doc

Build it with `tailor data build tweets --out DIR`, then:

    tailor eval --task tweets --data DIR --method none,bm25 \\
        --no-such-option 3 --limit N

and load records with `tailor ingest --data DIR`; `tailor report RUN --summary` prints a table,
`tailor demo --n many` does not, nor does `tailor serve --store users.db
--method-typo bm25`.
"""
    commands = list(commands_in(doc, "doc.md"))
    assert [(c.line, c.inline) for c in commands] == [(5, False), (3, True), (8, True), (8, True), (9, True),
                                                      (9, True)]
    assert commands[0].text.endswith("--no-such-option 3 --limit N")  # the continued line joined
    errors = {c.text.split()[1]: check(c) for c in commands}
    assert errors["data"] is None and errors["report"] is None
    assert "unrecognized arguments: --no-such-option 3" in str(errors["eval"])
    assert "invalid choice: 'ingest'" in str(errors["ingest"])
    assert "invalid positive value: 'many'" in str(errors["demo"])
    assert "unrecognized arguments: --method-typo bm25" in str(errors["serve"])


@pytest.mark.parametrize("text", [
    "    bash scripts/install.sh && .venv/bin/tailor demo",
    "    $tailor report --summary $folders > summary.md",
    "    COMMITS_LOG=x bash scripts/results.sh /tmp/r2   # tailor eval --bogus, in a comment",
])
def test_command_words_and_comments(text: str) -> None:
    commands = list(commands_in("\n" + text + "\n"))
    assert all(check(c) is None for c in commands)
    assert [c.text.split()[0] for c in commands] == (["$tailor"] if "$tailor" in text else
                                                     [] if "COMMITS_LOG" in text else [".venv/bin/tailor"])
