"""Data set readers and writers (LaMP), turning files into tailor's core types."""

from tailor.data.lamp import (
    PROFILE_FIELDS,
    DataFormatError,
    detect_task,
    load_split,
    normalize_task_name,
    read_outputs,
    read_questions,
    write_outputs,
)

__all__ = [
    "PROFILE_FIELDS",
    "DataFormatError",
    "detect_task",
    "load_split",
    "normalize_task_name",
    "read_outputs",
    "read_questions",
    "write_outputs",
]
