"""The registry of known datasets: :data:`DATASETS` of :class:`DatasetInfo`.

Each entry records what the data set is, where it officially comes from, the
files and checksums that identify the official version, the official counts
(used by ``recgym datasets`` before anything is loaded, and checked after
parsing) and the licence terms a user must respect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recgym.data import sources as src
from recgym.data.errors import UnknownDatasetError
from recgym.data.rating_log import JESTER_SCALE, STAR_SCALE, RatingScale
from recgym.data.sources import Archive, FileSpec


@dataclass(frozen=True)
class Counts:
    """Official size of a data set (or of one of its tables).

    :param n_users: number of users.
    :param n_items: number of items with at least one rating.
    :param n_ratings: number of ratings.
    :param note: where the figures come from, when not obvious.
    """

    n_users: int
    n_items: int
    n_ratings: int
    note: str = ""

    @property
    def density(self) -> float:
        return self.n_ratings / max(1, self.n_users * self.n_items)


@dataclass(frozen=True)
class DatasetInfo:
    """Everything recgym knows about a data set before loading it.

    :param name: the name passed to :func:`recgym.data.load`.
    :param description: one line.
    :param homepage: the official home page.
    :param scale: rating scale (reward normalisation).
    :param licence: the terms of use, in short.
    :param files: the dataset's files with their registered checksums.
    :param archives: official archives (download URLs and hashes).
    :param required: names of the files a load needs.
    :param subdirs: sub-folders of a data directory searched for the files.
    :param counts: official counts of the main table, or None.
    :param extra_counts: official counts of extra tables (Yahoo! R3 ``test``).
    :param downloadable: whether recgym may download it.
    :param manual: how to obtain the data when it is not downloadable.
    :param citation: reference to acknowledge.
    :param samples: single files of a smaller sample in the dataset's layout (a registered file),
        loaded with ``load(name, path=FILE)``; ``recgym datasets`` shows one it finds locally.
    """

    name: str
    description: str
    homepage: str
    scale: RatingScale
    licence: str
    files: tuple[FileSpec, ...] = ()
    archives: tuple[Archive, ...] = ()
    required: tuple[str, ...] = ()
    subdirs: tuple[str, ...] = ()
    counts: Counts | None = None
    extra_counts: dict[str, Counts] = field(default_factory=dict)
    downloadable: bool = True
    manual: str = ""
    citation: str = ""
    samples: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Official download URLs (first URL of each archive)."""
        return tuple(a.urls[0] for a in self.archives if a.urls)

    def file_spec(self, name: str) -> FileSpec | None:
        """The registered spec of a file, by canonical name."""
        return next((f for f in self.files if f.name == name), None)


_MOVIELENS_LICENCE = (
    "GroupLens research licence: research use only, no redistribution without permission, "
    "no commercial use without permission; publications must acknowledge the data set."
)
_MOVIELENS_CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and "
    "Context. ACM TiiS 5(4), Article 19."
)
_JESTER_LICENCE = (
    "Freely available for research use when acknowledged with the reference below "
    "(eigentaste.berkeley.edu/dataset)."
)
_JESTER_CITATION = (
    "Eigentaste: A Constant Time Collaborative Filtering Algorithm. Ken Goldberg, Theresa "
    "Roeder, Dhruv Gupta, and Chris Perkins. Information Retrieval, 4(2), 133-151. July 2001."
)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="ml-100k",
            description="MovieLens 100K: 1..5 stars, timestamps, 19 genre flags, user demographics.",
            homepage="https://grouplens.org/datasets/movielens/100k/",
            scale=STAR_SCALE,
            licence=_MOVIELENS_LICENCE,
            files=src.ML100K_FILES,
            archives=src.ML100K_ARCHIVES,
            required=("u.data", "u.item", "u.user", "u.genre"),
            subdirs=("ml-100k",),
            counts=Counts(943, 1682, 100_000),
            citation=_MOVIELENS_CITATION,
        ),
        DatasetInfo(
            name="ml-1m",
            description="MovieLens 1M: 1..5 stars, timestamps, 18 genres, user demographics.",
            homepage="https://grouplens.org/datasets/movielens/1m/",
            scale=STAR_SCALE,
            licence=_MOVIELENS_LICENCE,
            files=src.ML1M_FILES,
            archives=src.ML1M_ARCHIVES,
            required=("ratings.dat", "movies.dat", "users.dat"),
            subdirs=("ml-1m",),
            counts=Counts(6040, 3706, 1_000_209, note="3,706 of the 3,883 listed movies are rated"),
            citation=_MOVIELENS_CITATION,
        ),
        DatasetInfo(
            name="jester",
            description="Jester Dataset 1: continuous -10..10 joke ratings (3 sheets), 100 jokes, no timestamps.",
            homepage=src.JESTER_HOME,
            scale=JESTER_SCALE,
            licence=_JESTER_LICENCE,
            files=src.JESTER1_FILES,
            archives=src.JESTER1_ARCHIVES,
            required=tuple(src.JESTER1_ROWS),
            subdirs=("jester/dataset1", "jester"),
            counts=Counts(
                73_421,
                100,
                4_136_360,
                note="users and jokes from the official page; the rating count ('over 4.1 million' "
                "officially) as parsed from the official sheets by an independent project",
            ),
            citation=_JESTER_CITATION,
            # recommenderlab's 5,000-user sample of Dataset 1, as CSV in the official layout
            samples=("jester5k-dataset1-layout.csv",),
        ),
        DatasetInfo(
            name="jester-4",
            description="Jester Dataset 4 (2015-2019): -10..10 ratings of 158 jokes (136 rated), no timestamps.",
            homepage=src.JESTER_HOME,
            scale=JESTER_SCALE,
            licence=_JESTER_LICENCE,
            files=src.JESTER4_FILES,
            archives=src.JESTER4_ARCHIVES,
            required=("jester.xlsx",),
            subdirs=("jester/dataset4", "jester-4"),
            counts=Counts(
                7_699,
                136,
                106_489,
                note="'over 100,000 ratings from 7,699 users' officially; exact figures parsed "
                "from the official sheet (541 values outside [-10, 10] are clipped)",
            ),
            citation=_JESTER_CITATION,
        ),
        DatasetInfo(
            name="yahoo-r3",
            description="Yahoo! Music R3: 1..5 stars on self-selected songs (train) and a random-exposure test set.",
            homepage=src.YAHOO_WEBSCOPE,
            scale=STAR_SCALE,
            licence=(
                "Yahoo! Webscope data-sharing agreement: academic research only, no commercial use, "
                "no redistribution in whole or in part; not downloadable by recgym."
            ),
            files=src.YAHOO_FILES,
            archives=src.YAHOO_ARCHIVES,
            required=(src.YAHOO_TRAIN, src.YAHOO_TEST),
            subdirs=("yahoo-r3",),
            counts=Counts(15_400, 1_000, 311_704, note="train (user-selected songs)"),
            extra_counts={"test": Counts(5_400, 1_000, 54_000, note="10 random songs per user")},
            downloadable=False,
            manual=src.YAHOO_MANUAL,
        ),
        DatasetInfo(
            name="synthetic",
            description="Seeded synthetic 1..5 star log with latent structure (make_synthetic_log).",
            homepage="",
            scale=STAR_SCALE,
            licence="Generated by recgym (MIT).",
            downloadable=False,
        ),
    )
}


def get_info(name: str) -> DatasetInfo:
    """The registry entry of a data set.

    :param name: dataset name (see :data:`DATASETS`).
    :raises UnknownDatasetError: for an unregistered name; the message lists the known ones.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}. "
            "For your own ratings use recgym.data.from_dataframe or recgym.data.load_csv."
        ) from None
