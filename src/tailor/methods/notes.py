"""``summary`` and ``persona``: a line about the user above the input (prompting with a
profile summary, PAG-style, and with the user's persona), alone or with any retrieval."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailor.methods.method import BuildContext, NoteMethod

if TYPE_CHECKING:
    from tailor.personalizers.notes import NoteSource


def _summary(context: BuildContext) -> NoteSource:
    from tailor.personalizers.notes import SummaryNote

    summaries = context.summaries
    if summaries is None:
        if context.backend is None or context.store is None:
            raise ValueError("method summary needs a backend and a profile store to write its summaries")
        from tailor.prompting.summary import ProfileSummarizer

        summaries = ProfileSummarizer(context.backend, context.task, context.store)
    return SummaryNote(summaries)


def _persona(context: BuildContext) -> NoteSource:
    from tailor.personalizers.notes import PersonaNote

    if context.personas is not None:
        return PersonaNote(context.personas)
    if context.backend is None or context.store is None:
        raise ValueError("method persona needs a backend and a profile store to build its personas")
    from tailor.personas.chooser import PersonaChooser

    return PersonaNote(PersonaChooser(context.store, context.get_embedder()), backend=context.backend,
                       seed=context.seed)


SUMMARY = NoteMethod(
    name="summary", help="an LLM-written summary of the user's profile, stored per user, above the input",
    needs=frozenset({"backend", "store"}), position=10, served_from="summaries", make_source=_summary)
PERSONA = NoteMethod(
    name="persona", help="the description of the user's persona (a user in none gets the nearest)",
    needs=frozenset({"backend", "store", "embedder"}), position=20, served_from="personas",
    make_source=_persona)

__all__ = ["PERSONA", "SUMMARY"]
