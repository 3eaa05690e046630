"""Where each dataset officially comes from: archive URLs, file names and checksums.

Only facts live here; :mod:`recgym.data.fetch` finds, extracts and downloads
files from them. Checksums of the individual files are the SHA-256 values
measured on the staged copies (``shared/datasets/README.md``); ML-1M's
``ratings.dat`` is only known by its git blob id. Archive hashes are the
published ones where the publisher gives one (GroupLens); Jester publishes
none, so its files are checked by their parsed row counts instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    :param name: canonical file name (as in the official archive).
    :param sha256: registered SHA-256, if known.
    :param git_blob: registered git blob id (``git hash-object``), if known.
    :param size: size in bytes, if known.
    :param aliases: glob patterns of other names the file ships under.
    """

    name: str
    sha256: str | None = None
    git_blob: str | None = None
    size: int | None = None
    aliases: tuple[str, ...] = ()

    @property
    def checksum(self) -> tuple[str, str] | None:
        """``(algorithm, digest)`` to verify with (SHA-256 preferred), or None."""
        if self.sha256:
            return ("sha256", self.sha256)
        if self.git_blob:
            return ("git-blob", self.git_blob)
        return None


@dataclass(frozen=True)
class Archive:
    """A downloadable (or user-supplied) archive holding dataset files.

    :param filename: the archive's file name.
    :param urls: download URLs, tried in order (empty: not downloadable).
    :param known_hash: pooch-style ``"sha256:<hex>"`` / ``"md5:<hex>"``, or None.
    :param provides: canonical names of the files taken out of it.
    :param extract: False to keep the archive as a file (read in place).
    :param optional: whether a load still succeeds without it.
    :param aliases: glob patterns of other names the archive may have.
    :param size: size in bytes, if known.
    """

    filename: str
    urls: tuple[str, ...]
    known_hash: str | None
    provides: tuple[str, ...]
    extract: bool = True
    optional: bool = False
    aliases: tuple[str, ...] = ()
    size: int | None = None


# -- MovieLens 100K --------------------------------------------------------------
ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_ARCHIVE_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
ML100K_ARCHIVE_MD5 = "0e33842e24a9c977be4e0107933c0723"

_ML100K = [
    ("README", 6750, "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52", "04ad704706f0290e503b863a00aebd4589e1e072"),
    ("u.data", 1979173, "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490", "16ef21ed827cae1a3f71e89e23cffb5a8f44baae"),
    ("u.item", 236344, "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701", "91bb56d53fcb5f8bbac079755593b48d34cfc9a7"),
    ("u.user", 22628, "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c", "53d296f961959ad3a9389a6bbd7e8251aeeb6e17"),
    ("u.genre", 202, "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb", "ae1e29c6c5224db09a8fddca9c4bd46523caff21"),
    ("u.occupation", 193, "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d", "6e4f9e0513d6e70e7632299f05954677c7a47531"),
    ("u.info", 36, "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b", "f936f98efdd50d4e46f9ad03672ab1bfeb250d46"),
    ("u1.base", 1586544, "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a", "3261020899ada0351312e72aa1055ff9ab7110cc"),
    ("u1.test", 392629, "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950", "04b2c03e39f412d87028e06360d4dc57b878c90f"),
    ("u2.base", 1583948, "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e", "ab50c87b99d5bf264f85d81a71029ea21085b82d"),
    ("u2.test", 395225, "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3", "03527d724f43922fa57bef8af3f98e0709fe654f"),
    ("u3.base", 1582546, "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d", "c7f75cf98d21918fa082244538430eae3f0f94d2"),
    ("u3.test", 396627, "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d", "e7641e76553753955841760568fcb16de312ef9b"),
    ("u4.base", 1581878, "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca", "94f7fc78c995548920ef74470f5a8085ffaf0dd1"),
    ("u4.test", 397295, "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9", "a8109c4c865938c3c5253a8d5d0a74169920cdab"),
    ("u5.base", 1581776, "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485", "b098e9fddb8c641a47c5a461105e44cd755768dc"),
    ("u5.test", 397397, "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634", "827ca8046f1ed15ee1d5b8f13054f96b72554572"),
    ("ua.base", 1792501, "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2", "f3f414560fee9d9ba7e456fe0ce3d01ca2b5fb0b"),
    ("ua.test", 186672, "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42", "1fc61f6c97d02eb642ec876e304a5880d2ba6575"),
    ("ub.base", 1792476, "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881", "3fd9bc002637f29879f3c61a6c3a2a94312bda61"),
    ("ub.test", 186697, "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da", "23bb03a735e26a423a7a66ec1e8086ad25b2e801"),
]
ML100K_FILES = tuple(FileSpec(n, sha256=s, git_blob=b, size=z) for n, z, s, b in _ML100K)
ML100K_ARCHIVES = (
    Archive(
        "ml-100k.zip",
        (ML100K_URL,),
        f"sha256:{ML100K_ARCHIVE_SHA256}",
        provides=tuple(f.name for f in ML100K_FILES),
        size=4_924_029,
    ),
)

# -- MovieLens 1M ------------------------------------------------------------------
ML1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ML1M_ARCHIVE_MD5 = "c4d9eecfca2ab87c1945afe126590906"
ML1M_FILES = (
    FileSpec("README", sha256="2d5ddce86ccbd247207456165827b4b9ddf27282bca93807d4c763e28414f133",
             git_blob="3d0acab0029027ec47ef446ad12210f0d2c2a9f6", size=5577),
    FileSpec("movies.dat", sha256="0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
             git_blob="9a735435722829dad68446ef1c30d001d5d00c1d", size=171308),
    FileSpec("users.dat", sha256="1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
             git_blob="2f86be06c70946984c0d5d56f9fcaa658eef139e", size=134368),
    # Only the git blob id is known (observed identically in 4 independent repositories).
    FileSpec("ratings.dat", git_blob="77a7c4b150f588c23bb9e1f068aa996c0b413695"),
)
ML1M_ARCHIVES = (
    Archive("ml-1m.zip", (ML1M_URL,), f"md5:{ML1M_ARCHIVE_MD5}", provides=tuple(f.name for f in ML1M_FILES)),
)

# -- Jester ------------------------------------------------------------------------
JESTER_HOME = "https://eigentaste.berkeley.edu/dataset/"
_JESTER_BASE = "https://eigentaste.berkeley.edu/dataset/"
_JESTER_ARCHIVE_BASE = "https://eigentaste.berkeley.edu/dataset/archive/"

# Dataset 1: rows (users) per official sheet, as stated on the official page.
JESTER1_ROWS = {"jester-data-1.xls": 24_983, "jester-data-2.xls": 23_500, "jester-data-3.xls": 24_938}
JESTER1_JOKES_ZIP = "jester_dataset_1_joke_texts.zip"
# The page publishes no checksums. These SHA-256 values were observed on the
# archives by two independent projects (Internet Archive copies, 2025/2026).
_JESTER1_ZIPS = {
    1: ("cb7841756ded125b15f3d95c9f8241224065e96354c132a46ae4214deeab7615", 4_171_628),
    2: ("4d312fd824d8c8cb2c9c952a7b1fb7c00d1f5fd3ece370f7285aa701d371748b", 3_924_205),
    3: ("7f548d3762d3506cf7cd37d8cb9e3adb67984a7da7aa2d2096d5e0b1b884758d", 2_151_299),
}
JESTER1_FILES = (
    *(FileSpec(name) for name in JESTER1_ROWS),
    FileSpec(JESTER1_JOKES_ZIP, sha256="874a97180ac49a1d815ab6829fd9411021cdd25a92557dc39af46a26d5d1a9da",
             size=92_053),
    # Derived plain-text copy of recommenderlab's Jester5k sample (Dataset 1
    # layout, staged for tests); registered so that load(path=...) verifies it.
    # The staging README prints this digest without its first two characters
    # ("6e"); the value here is the file's full SHA-256.
    FileSpec("jester5k-dataset1-layout.csv",
             sha256="6e6f89cf2b591aac53c4d9a90a1f0067fd7d4bb3c83e918d2ea67cb34e9ae79c", size=2_393_609),
    FileSpec("jester5k-jokes.txt",
             sha256="e4b674ebbf28f203444fc7ef6ed730e22111fb7879790b24cc937764b4b46f0d", size=31_816),
)
JESTER1_ARCHIVES = (
    *(
        Archive(
            f"jester_dataset_1_{k}.zip",
            (f"{_JESTER_BASE}jester_dataset_1_{k}.zip", f"{_JESTER_ARCHIVE_BASE}jester_dataset_1_{k}.zip"),
            f"sha256:{sha}",
            provides=(f"jester-data-{k}.xls",),
            size=size,
        )
        for k, (sha, size) in _JESTER1_ZIPS.items()
    ),
    Archive(
        JESTER1_JOKES_ZIP,
        (f"{_JESTER_BASE}{JESTER1_JOKES_ZIP}", f"{_JESTER_ARCHIVE_BASE}{JESTER1_JOKES_ZIP}"),
        "sha256:874a97180ac49a1d815ab6829fd9411021cdd25a92557dc39af46a26d5d1a9da",
        provides=(JESTER1_JOKES_ZIP,),
        extract=False,
        optional=True,
        size=92_053,
    ),
)

# Dataset 4. The archive's hash is not published; the extracted sheet is
# verified against the SHA-256 of the staged copy (content unchanged, renamed).
JESTER4_URL = f"{_JESTER_BASE}JesterDataset4.zip"
JESTER4_FILES = (
    FileSpec("jester.xlsx", sha256="e7160c967ebdd1b78c8a53fdadb33cac91de8ba162310ddbba6bc31046184cf0",
             size=3_163_765, aliases=("*Transformed*.xlsx",)),
    FileSpec("Dataset4JokeSet.xlsx", sha256="92a0f587820c83f1e1ab8f4e6489d8b144927cc6f76a0f6896e7843e32dd95c7",
             size=31_699),
)
JESTER4_ARCHIVES = (
    Archive("JesterDataset4.zip", (JESTER4_URL,), None, provides=("jester.xlsx", "Dataset4JokeSet.xlsx")),
)

# -- Yahoo! Music R3 -------------------------------------------------------------------
YAHOO_WEBSCOPE = "https://webscope.sandbox.yahoo.com/"
YAHOO_CATALOGUE = "R3 - Yahoo! Music ratings for User Selected and Randomly Selected songs, version 1.0"
YAHOO_TRAIN = "ydata-ymusic-rating-study-v1_0-train.txt"
YAHOO_TEST = "ydata-ymusic-rating-study-v1_0-test.txt"
YAHOO_FILES = (
    FileSpec(YAHOO_TRAIN, sha256="85538b3c4a93eafc4f0ce2d39a6cd178e32a6b615ce775b9d635f7995706269d",
             size=3_459_357),
    FileSpec(YAHOO_TEST, sha256="f27a73bef8c7ccedb17576fe2d4cc52b80c2d5fa60f13529596f003ffd0d8533",
             size=577_233),
)
# Yahoo's licence forbids redistribution and automated download: no URL.
YAHOO_ARCHIVES = (
    Archive(
        "dataset.tgz",
        (),
        "sha256:403c4014248c7200b7a5e20c9f9b904584f4f921b07a16a198d94ecfc8c0c13e",
        provides=(YAHOO_TRAIN, YAHOO_TEST),
        aliases=("ydata-ymusic-rating-study*.tgz", "ydata-ymusic-rating-study*.tar.gz"),
        size=1_170_074,
    ),
)
YAHOO_MANUAL = (
    "Yahoo!'s licence forbids redistribution and automated download, so recgym cannot "
    f"fetch R3. Obtain it from Yahoo! Webscope ({YAHOO_WEBSCOPE}), catalogue \"{YAHOO_CATALOGUE}\" "
    "(this needs a signed data-sharing agreement), and place the archive dataset.tgz or the "
    f"files {YAHOO_TRAIN} and {YAHOO_TEST} in <data_dir>/yahoo-r3/."
)
