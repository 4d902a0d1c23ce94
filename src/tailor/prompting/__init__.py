"""Prompt builders: retrieved items, personas and summaries into chat messages."""

from tailor.prompting.builder import LAYOUTS, Layout, PromptBudget, build_messages, truncate

__all__ = ["LAYOUTS", "Layout", "PromptBudget", "build_messages", "truncate"]
