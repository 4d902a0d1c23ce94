"""Data set readers and writers (LaMP's file layout), turning files into tailor's core types.

They know file layouts, not tasks: which profile fields a task needs and what its outputs
files are called are the task's (:mod:`tailor.tasks`)."""

from tailor.data.lamp import (
    DataFormatError,
    load_split,
    read_outputs,
    read_questions,
    split_files,
    write_outputs,
)

__all__ = [
    "DataFormatError",
    "load_split",
    "read_outputs",
    "read_questions",
    "split_files",
    "write_outputs",
]
