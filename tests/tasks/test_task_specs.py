"""Task specs: names, retrieval queries, how items are shown, and how answers are parsed."""

from __future__ import annotations

import pytest

from tailor.tasks import TASKS, TaskSpec, get_task
from tailor.tasks.lamp import LAMP_4, LAMP_TASKS
from tailor.tasks.news_headlines import NEWS_HEADLINES
from tailor.types import HistoryRecord

ALL = {name: get_task(name) for name in TASKS.names()}


def record(id: str = "p1", **fields: str) -> HistoryRecord:
    return HistoryRecord(id=id, fields=fields)


def spec(kind: str = "classification", labels: tuple[str, ...] = ()) -> TaskSpec:
    return TaskSpec(name="test", kind=kind, instruction="Answer.", query_marker="", document_fields=("text",),
                    labels=labels)  # type: ignore[arg-type]


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["LaMP-4", "LaMP_4", "lamp-4", "lamp_4", " LAMP-4 "])
def test_get_task_accepts_every_spelling_of_a_lamp_name(name: str) -> None:
    assert get_task(name) is LAMP_4
    assert name in TASKS


def test_get_task_finds_news_variants_and_own_tasks() -> None:
    assert get_task("lamp_2n") is LAMP_TASKS["LaMP-2N"]
    assert get_task("news-headlines") is NEWS_HEADLINES


@pytest.mark.parametrize("name", ["LaMP-8", "lamp", "headlines", "", "LaMP-4x"])
def test_get_task_rejects_unknown_names_listing_the_valid_ones(name: str) -> None:
    with pytest.raises(ValueError, match="unknown task") as error:
        get_task(name)
    for valid in TASKS.names():
        assert valid in str(error.value)


def test_every_task_is_registered_under_its_own_name() -> None:
    assert list(LAMP_TASKS) == ["LaMP-1", "LaMP-2", "LaMP-2N", "LaMP-2M", "LaMP-3", "LaMP-4", "LaMP-5", "LaMP-6",
                                "LaMP-7"]
    assert set(LAMP_TASKS) | {"news-headlines", "commits", "tweets", "movielens-ratings", "debates", "movielens-next",
                              "movielens-next-full", "preference", "LongLaMP-2", "LongLaMP-3", "LongLaMP-4",
                              "news-openings"} == set(ALL)
    assert all(task.name == name for name, task in ALL.items())
    assert all(task is LAMP_TASKS[name] for name, task in ALL.items() if name in LAMP_TASKS)


def test_tasks_have_labels_exactly_when_their_answers_are_labels() -> None:
    for name, task in ALL.items():
        assert bool(task.labels) == (task.kind in ("classification", "rating")), name
        assert task.uses_candidates == bool(task.labels), name


def test_data_format() -> None:
    assert get_task("news-headlines").lamp_format == "LaMP-4"
    assert get_task("LaMP-4").lamp_format == "LaMP-4"
    assert get_task("LaMP-2N").lamp_format == "LaMP-2N"


# -- retrieval queries ---------------------------------------------------------------------------

_TAGS = "[sci-fi, based on a book, comedy, action, twist ending, dystopia, dark comedy, classic]"
_CATEGORIES = "[travel, education, parents, style & beauty, entertainment, food & drink, business]"

# The official LaMP phrasing of each task's input, up to where the content starts.
OFFICIAL_PREFIXES = {
    "LaMP-2": ("Which tag does this movie relate to among the following tags? Just answer with the tag name without "
               f"further explanation. tags: {_TAGS} description: "),
    "LaMP-2M": ("Which tag does this movie relate to among the following tags? Just answer with the tag name without "
                f"further explanation. tags: {_TAGS} description: "),
    "LaMP-2N": ("Which category does this article relate to among the following categories? Just answer with the "
                f"category name without further explanation. categories: {_CATEGORIES} article: "),
    "LaMP-3": ("What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, 4, or 5 "
               "without further explanation. review: "),
    "LaMP-4": "Generate a headline for the following article: ",
    "LaMP-5": "Generate a title for the following abstract of a paper: ",
    "LaMP-6": "Generate a subject for the following email: ",
    "LaMP-7": "Paraphrase the following tweet without any explanation before or after it: ",
    "news-headlines": "Generate a headline for the following article: ",
    "tweets": "Complete the following tweet: ",
    "movielens-ratings": ("What rating from 1 to 5 would this user give the following movie? Answer with a single "
                          "number. movie: "),
    "debates": "Give this speaker's reply to the following debate turn: ",
    "commits": "Generate a subject for the following commit message: ",
    # LongLaMP's abstract retrieval queries with the keywords after "items:".
    "LongLaMP-2": 'Generate an abstract for the title "Trees" using the following items: ',
    "news-openings": "Write the opening of a news article with the headline ",
}
CONTENT = "Volunteers planted trees along the river."


def test_every_task_but_citation_has_an_official_prefix_here() -> None:
    # The ranking tasks ask one question of every user; their inputs carry no text to retrieve by.
    # The preference task's input is the user's whole message; LongLaMP's review and topic
    # retrieval query with the whole input, as LongLaMP's retrievers do.
    assert set(OFFICIAL_PREFIXES) | {"LaMP-1", "movielens-next", "movielens-next-full", "preference", "LongLaMP-3",
                                     "LongLaMP-4"} == set(ALL)


@pytest.mark.parametrize("name", list(OFFICIAL_PREFIXES))
def test_query_is_the_text_after_the_marker(name: str) -> None:
    assert ALL[name].query(OFFICIAL_PREFIXES[name] + CONTENT + " \n") == CONTENT


def test_citation_query_is_the_whole_input() -> None:
    text = ('For an author who has written the paper with the title "Sparse retrieval", which reference is related? '
            'Just answer with [1] or [2] without explanation. [1]: "Okapi at TREC-3" [2]: "Protein folding"')
    assert ALL["LaMP-1"].query(text) == text


@pytest.mark.parametrize(("name", "content"), [
    ("LaMP-7", "RT @maria: game at 7:30 tonight http://t.co/xyz"),
    ("LaMP-4", "Officials said the article: a new tax would follow."),
    ("LaMP-3", "Great blender. My review: five stars."),
    ("LaMP-2", "A film whose description: fits no genre."),
])
def test_query_keeps_a_marker_that_occurs_inside_the_content(name: str, content: str) -> None:
    assert ALL[name].query(OFFICIAL_PREFIXES[name] + content) == content


def test_query_without_a_marker_is_the_whole_stripped_input() -> None:
    assert ALL["LaMP-4"].query("  just some article text \n") == "just some article text"


# -- profile items in prompts --------------------------------------------------------------------

ITEM = record(title="TITLE-T", text="TEXT-X", abstract="ABSTRACT-A", description="DESC-D", tag="comedy",
              category="business", score="4")


def _fields_in(rendered: str) -> set[str]:
    return {name for name, value in ITEM.fields.items() if value in rendered}


@pytest.mark.parametrize(("name", "shown"), [
    ("LaMP-1", {"title"}),
    ("LaMP-2", {"description", "tag"}),
    ("LaMP-2M", {"description", "tag"}),
    ("LaMP-2N", {"text", "category"}),
    ("LaMP-3", {"text", "score"}),
    ("LaMP-4", {"title", "text"}),
    ("LaMP-5", {"title", "abstract"}),
    ("LaMP-6", {"title", "text"}),
    ("LaMP-7", {"text"}),
    ("news-headlines", {"title", "text"}),
])
def test_render_item_shows_the_task_fields(name: str, shown: set[str]) -> None:
    assert _fields_in(ALL[name].render_item(ITEM)) == shown


@pytest.mark.parametrize(("name", "given", "answer"), [
    ("LaMP-2", "description", "tag"),
    ("LaMP-2M", "description", "tag"),
    ("LaMP-2N", "text", "category"),
    ("LaMP-3", "text", "score"),
    ("LaMP-4", "text", "title"),
    ("LaMP-5", "abstract", "title"),
    ("LaMP-6", "text", "title"),
    ("news-headlines", "text", "title"),
])
def test_item_turn_pairs_the_item_input_with_its_output(name: str, given: str, answer: str) -> None:
    task = ALL[name]
    turn = task.item_turn(ITEM)
    assert turn is not None
    prompt, output = turn
    assert output == ITEM.fields[answer]
    assert _fields_in(prompt) == {given}
    # The replayed turn reads like a real input of the task: retrieval would query its content.
    assert task.query(prompt) == ITEM.fields[given]


def test_lamp_4_item_turn_is_the_headline_prompt_then_the_title() -> None:
    assert ALL["LaMP-4"].item_turn(record(title="Trees line the river", text="Volunteers planted trees.")) == (
        "Generate a headline for the following article: Volunteers planted trees.", "Trees line the river")


@pytest.mark.parametrize("name", ["LaMP-1", "LaMP-7"])
def test_tasks_whose_items_pair_no_input_with_an_output_have_no_item_turn(name: str) -> None:
    assert ALL[name].item_turn(ITEM) is None


def test_document_reads_only_the_task_fields_in_order() -> None:
    assert ALL["LaMP-4"].document(ITEM) == "TITLE-T TEXT-X"
    assert ALL["LaMP-5"].document(ITEM) == "TITLE-T ABSTRACT-A"
    assert ALL["LaMP-4"].document(record(text="only text")) == "only text"


# -- parsing answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "label"), [
    ("comedy", "comedy"),
    ("  comedy \n", "comedy"),
    ("Comedy", "comedy"),
    ('"comedy".', "comedy"),
    ("SCI-FI", "sci-fi"),
    ("I think it is comedy.", "comedy"),
    ("This one is a dark comedy.", "dark comedy"),
    ("action, though some comedy", "action"),
    ("comedy, though some action", "comedy"),
    ("Based on a book, I'd say", "based on a book"),
])
def test_classification_parse_finds_the_label(raw: str, label: str) -> None:
    assert ALL["LaMP-2"].parse(raw) == label


def test_the_longer_label_wins_at_the_same_position() -> None:
    task = spec(labels=("comedy", "comedy drama", "drama"))
    assert task.parse("It is a comedy drama, I think") == "comedy drama"
    assert task.parse("It is a comedy, not a drama") == "comedy"


@pytest.mark.parametrize("raw", ["I do not know", "none of these.", ""])
def test_classification_parse_without_a_label_returns_the_text(raw: str) -> None:
    parsed = ALL["LaMP-2"].parse(raw)
    assert parsed == raw.strip().strip(".")
    assert parsed not in ALL["LaMP-2"].labels


def test_citation_parse() -> None:
    assert ALL["LaMP-1"].parse("[2]") == "[2]"
    assert ALL["LaMP-1"].parse("The answer is [1].") == "[1]"


def test_news_category_parse_finds_labels_with_spaces_and_ampersands() -> None:
    assert ALL["LaMP-2N"].parse("Category: Food & Drink") == "food & drink"


@pytest.mark.parametrize(("raw", "rating"), [
    ("4", "4"),
    (" 4 \n", "4"),
    ("4 stars", "4"),
    ("Rating: 3.5", "3.5"),
    ("I'd give it 2.0 out of 5", "2"),
    ("five", "five"),
    ("", ""),
])
def test_rating_parse_reads_the_first_number(raw: str, rating: str) -> None:
    assert ALL["LaMP-3"].parse(raw) == rating


@pytest.mark.parametrize(("raw", "text"), [
    ("Trees line the river", "Trees line the river"),
    ("\n\n  Trees line the river  \nThis headline captures the article.", "Trees line the river"),
    ('"Trees line the river"', "Trees line the river"),
    ("Headline: Trees line the river", "Trees line the river"),
    ("headline:Trees line the river", "Trees line the river"),
    ("The title is: Trees line the river", "Trees line the river"),
    ('Here is the headline: "Trees line the river"', "Trees line the river"),
    ("Rivers: a new hope for city trees", "Rivers: a new hope for city trees"),
    ("Breaking: Trees line the river", "Breaking: Trees line the river"),
    ("", ""),
])
def test_generation_parse_keeps_the_first_line_without_preamble(raw: str, text: str) -> None:
    assert ALL["LaMP-4"].parse(raw) == text
