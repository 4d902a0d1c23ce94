"""The LaMP task names and the one function that turns any accepted spelling into them.

Data readers, metrics and task specs all take task names from users and files, so they
share this module; it imports nothing from tailor, which lets every layer use it.
"""

from __future__ import annotations

import re

# Plain "LaMP-2" is the movie-tagging version (the one the current LaMP release ships);
# "LaMP-2M" names it explicitly and "LaMP-2N" is the older news-categorization version.
LAMP_TASK_NAMES: tuple[str, ...] = (
    "LaMP-1",
    "LaMP-2",
    "LaMP-2N",
    "LaMP-2M",
    "LaMP-3",
    "LaMP-4",
    "LaMP-5",
    "LaMP-6",
    "LaMP-7",
)

# Matched against the stripped, lower-cased name: the official files say "LaMP_4", people
# type "lamp-4" or "LaMP4".
_TASK_PATTERN = re.compile(r"lamp[-_ ]?([1-7])([mn]?)")


def normalize_task_name(name: str) -> str:
    """Return the canonical spelling (``"LaMP-4"``, ``"LaMP-2N"``) of a LaMP task name.

    Case is ignored, surrounding spaces are dropped, and the dash may be written as ``_``,
    a space or nothing: ``"LaMP_4"``, ``"lamp-4"``, ``"lamp 4"`` and ``" LAMP4 "`` all give
    ``"LaMP-4"``; ``"lamp_2n"`` gives ``"LaMP-2N"``. Raises ValueError, listing the valid
    names, for anything else (``"LaMP-8"``, ``"LaMP-4M"``, a non-string).
    """
    match = _TASK_PATTERN.fullmatch(name.strip().lower()) if isinstance(name, str) else None
    if match is not None:
        canonical = f"LaMP-{match.group(1)}{match.group(2).upper()}"
        if canonical in LAMP_TASK_NAMES:
            return canonical
    raise ValueError(
        f"unknown task name {name!r}; valid names are {', '.join(LAMP_TASK_NAMES)} "
        "(case is ignored, and '_', a space or nothing may stand for the dash, as in LaMP_4 or lamp4)"
    )
