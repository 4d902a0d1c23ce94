"""A tiny interaction log in the generic CSV layout, and the next-item folder built from it."""

from __future__ import annotations

from pathlib import Path

from tailor.data.interactions import build_next_item, read_interactions_csv, read_items_csv

TITLES = {"a": "Alien", "b": "Blade Runner", "c": "Casablanca", "d": "Dumbo", "e": "Eraserhead",
          "f": "Fargo", "g": "Gattaca", "h": "Heat"}
# Sci-fi fans (u1-u3) and the rest; u4 chose two items in the same second as its last one.
ROWS = [
    ("u1", "a", 1), ("u1", "b", 2), ("u1", "g", 3), ("u1", "e", 4), ("u1", "f", 5),
    ("u2", "a", 1), ("u2", "g", 2), ("u2", "b", 3), ("u2", "h", 4),
    ("u3", "b", 1), ("u3", "a", 2), ("u3", "e", 3), ("u3", "g", 4),
    ("u4", "c", 1), ("u4", "d", 2), ("u4", "f", 3), ("u4", "h", 5), ("u4", "a", 5),
    ("u5", "d", 1), ("u5", "c", 2), ("u5", "h", 3), ("u5", "f", 4), ("u5", "c", 9),
    ("u6", "a", 1), ("u6", "b", 1),
]


def write_csvs(folder: Path) -> tuple[Path, Path]:
    """The log and the titles as the documented CSV files."""
    folder.mkdir(parents=True, exist_ok=True)
    interactions, items = folder / "interactions.csv", folder / "items.csv"
    interactions.write_text("user,item,timestamp,rating\n" + "".join(f"{u},{i},{t},4\n" for u, i, t in ROWS))
    items.write_text("item,title\n" + "".join(f"{i},{title}\n" for i, title in TITLES.items()))
    return interactions, items


def build(folder: Path, *, negatives: int = 3, seed: int = 0) -> Path:
    interactions, items = write_csvs(folder / "csv")
    build_next_item(folder / "data", read_interactions_csv(interactions), read_items_csv(items), name="movielens-next",
                    source="test", negatives=negatives, seed=seed)
    return folder / "data"
