"""The label store: SQLite in WAL mode, one transaction per label, acknowledged only once it has
committed; a labeller labels an item once; tokens stored as SHA-256 digests; schema versioned.

Tables: ``meta`` (schema version), ``labellers`` (name, token digest, admin flag), ``items`` (a
comparison of two completions of one prompt, or one output to rate, queued for one labeller; the
gold scores are kept for agreement, never shown) and ``labels`` (unique per item and labeller:
a choice ``a``/``b``/``tie``/``skip`` or a score 1..7).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from rewardlab.errors import RewardLabError

SCHEMA_VERSION = 1
CHOICES = ("a", "b", "tie", "skip")
SCORES = range(1, 8)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labellers (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, token_sha256 TEXT UNIQUE NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('comparison', 'rating')),
    labeller_id INTEGER NOT NULL REFERENCES labellers(id), prompt TEXT NOT NULL,
    a TEXT NOT NULL, b TEXT, gold_a REAL, gold_b REAL, source TEXT, created REAL NOT NULL,
    request_key TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items(id),
    labeller_id INTEGER NOT NULL REFERENCES labellers(id),
    choice TEXT CHECK (choice IN ('a', 'b', 'tie', 'skip')),
    score INTEGER CHECK (score BETWEEN 1 AND 7), created REAL NOT NULL,
    UNIQUE (item_id, labeller_id));
CREATE INDEX IF NOT EXISTS items_by_labeller ON items (labeller_id, kind, id);
"""


def token_digest(token: str) -> str:
    """SHA-256 of a token (tokens are 32 random bytes, so a plain digest is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """A label database at `path` (created with its schema when new)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        private(self.path)  # SQLite gives its -wal and -shm files the database's mode
        with self.connect() as db:
            for statement in SCHEMA.split(";"):  # executescript would commit the transaction
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise RewardLabError(
                    f"label database {self.path} has schema version {row[0]}; this lab reads "
                    f"version {SCHEMA_VERSION}"
                )

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode with full sync; the block is one transaction, committed on
        leaving it (rolled back on an error)."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise RewardLabError(f"label database {self.path}: {exc}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise RewardLabError(f"label database {self.path}: {exc}") from None
        finally:
            db.close()

    # ------------------------------------------------------------ labellers

    def add_labeller(self, name: str, admin: bool = False) -> str:
        """Create labeller `name`; return its token (shown once, stored only as a digest)."""
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
            raise RewardLabError(f"labeller name {name!r}: 1-64 letters, digits, - or _")
        token = secrets.token_urlsafe(32)
        with self.connect() as db:
            try:
                db.execute(
                    "INSERT INTO labellers (name, token_sha256, is_admin, created) VALUES (?,?,?,?)",
                    (name, token_digest(token), int(admin), time.time()),
                )
            except sqlite3.IntegrityError:
                raise RewardLabError(f"labeller {name!r} exists already") from None
        return token

    def who(self, token: str | None) -> tuple[int, str, bool] | None:
        """(id, name, is_admin) of the labeller holding `token`, or None."""
        if not token:
            return None
        with self.connect() as db:
            row = db.execute(
                "SELECT id, name, is_admin FROM labellers WHERE token_sha256 = ?",
                (token_digest(token),),
            ).fetchone()
        return (row[0], row[1], bool(row[2])) if row else None

    def labeller_id(self, name: str) -> int:
        with self.connect() as db:
            row = db.execute("SELECT id FROM labellers WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise RewardLabError(f"no labeller {name!r}")
        return row[0]

    # ------------------------------------------------------------ items

    def add_items(
        self, labeller: str, kind: str, rows: Sequence[dict], source: str = ""
    ) -> list[int]:
        """Queue `rows` (prompt, a, b, gold_a, gold_b) of `kind` for `labeller`; their ids."""
        lid = self.labeller_id(labeller)
        ids = []
        with self.connect() as db:
            for r in rows:
                cur = db.execute(
                    "INSERT INTO items (kind, labeller_id, prompt, a, b, gold_a, gold_b, source, "
                    "created) VALUES (?,?,?,?,?,?,?,?,?)",
                    (kind, lid, r["prompt"], r["a"], r.get("b"), r.get("gold_a"), r.get("gold_b"),
                     source, time.time()),
                )  # fmt: skip
                ids.append(cur.lastrowid)
        return ids

    def request_ratings(self, labeller: str, rows: Sequence[dict], source: str = "") -> list[int]:
        """Rating items for `rows` (prompt, a, key), one per distinct ``key``: a request already
        made (by a learner before its restart) is found again, not repeated. Their ids."""
        lid = self.labeller_id(labeller)
        with self.connect() as db:
            for r in rows:
                db.execute(
                    "INSERT OR IGNORE INTO items (kind, labeller_id, prompt, a, source, created, "
                    "request_key) VALUES ('rating', ?, ?, ?, ?, ?, ?)",
                    (lid, r["prompt"], r["a"], source, time.time(), r["key"]),
                )
            return [db.execute("SELECT id FROM items WHERE request_key = ?", (r["key"],)).fetchone()[0]
                    for r in rows]  # fmt: skip

    def scores(self, item_ids: Sequence[int]) -> dict[int, int]:
        """{item: score} of the rated items among `item_ids`."""
        with self.connect() as db:
            q = ",".join("?" * len(item_ids))
            rows = db.execute(f"SELECT item_id, score FROM labels WHERE score IS NOT NULL AND "
                              f"item_id IN ({q})", list(item_ids)).fetchall()  # fmt: skip
        return dict(rows)

    def next_item(self, labeller_id: int, kind: str) -> dict | None:
        """The labeller's first unlabelled item of `kind` (gold left out), or None."""
        with self.connect() as db:
            row = db.execute(
                "SELECT i.id, i.prompt, i.a, i.b FROM items i LEFT JOIN labels l ON "
                "l.item_id = i.id AND l.labeller_id = i.labeller_id WHERE i.labeller_id = ? AND "
                "i.kind = ? AND l.id IS NULL ORDER BY i.id LIMIT 1",
                (labeller_id, kind),
            ).fetchone()
        return dict(id=row[0], kind=kind, prompt=row[1], a=row[2], b=row[3]) if row else None

    def progress(self, labeller_id: int) -> dict:
        """{kind: {"done": labelled, "total": queued}} of a labeller."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT i.kind, COUNT(i.id), COUNT(l.id) FROM items i LEFT JOIN labels l ON "
                "l.item_id = i.id AND l.labeller_id = i.labeller_id WHERE i.labeller_id = ? "
                "GROUP BY i.kind",
                (labeller_id,),
            ).fetchall()
        return {k: {"done": done, "total": total} for k, total, done in rows}

    # ------------------------------------------------------------ labels

    def add_label(self, labeller_id: int, item_id: int, choice=None, score=None) -> dict:
        """Record a label, in one transaction; returned only after it commits.

        Returns ``{"item", "choice"|"score", "duplicate"}``: a repeat of the same label is
        answered as a duplicate and counted once.

        Raises:
            LookupError: no such item. PermissionError: another labeller's item.
            ValueError: a label that does not fit the item, or differs from the one given.
        """
        with self.connect() as db:
            row = db.execute(
                "SELECT kind, labeller_id FROM items WHERE id = ?", (item_id,)
            ).fetchone()
            if row is None:
                raise LookupError(f"no item {item_id}")
            kind, owner = row
            if owner != labeller_id:
                raise PermissionError(f"item {item_id} is queued for another labeller")
            if kind == "comparison":
                if choice not in CHOICES or score is not None:
                    raise ValueError(f"a comparison takes 'choice', one of {', '.join(CHOICES)}")
            elif score not in SCORES or choice is not None or isinstance(score, bool):
                raise ValueError("a rating takes 'score', an integer from 1 to 7")
            old = db.execute(
                "SELECT choice, score FROM labels WHERE item_id = ? AND labeller_id = ?",
                (item_id, labeller_id),
            ).fetchone()
            if old is not None:
                if old != (choice, score):
                    raise ValueError(
                        f"item {item_id} is labelled already ({old[0] or old[1]}); undo first"
                    )
                return dict(item=item_id, choice=choice, score=score, duplicate=True)
            db.execute(
                "INSERT INTO labels (item_id, labeller_id, choice, score, created) VALUES (?,?,?,?,?)",
                (item_id, labeller_id, choice, score, time.time()),
            )
        return dict(item=item_id, choice=choice, score=score, duplicate=False)

    def undo(self, labeller_id: int) -> int | None:
        """Remove the labeller's latest label; the item it was on, or None."""
        with self.connect() as db:
            row = db.execute(
                "SELECT id, item_id FROM labels WHERE labeller_id = ? ORDER BY id DESC LIMIT 1",
                (labeller_id,),
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM labels WHERE id = ?", (row[0],))
        return row[1]

    def labels(self) -> list[dict]:
        """Every label with its item and labeller (gold included), in the order given."""
        with self.connect() as db:
            cur = db.execute(
                "SELECT l.id, n.name, i.id, i.kind, i.prompt, i.a, i.b, i.gold_a, i.gold_b, "
                "l.choice, l.score, l.created FROM labels l JOIN items i ON i.id = l.item_id "
                "JOIN labellers n ON n.id = l.labeller_id ORDER BY l.id"
            )
            cols = ["label", "labeller", "item", "kind", "prompt", "a", "b", "gold_a", "gold_b",
                    "choice", "score", "created"]  # fmt: skip
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def private(path: Path) -> None:
    """`path` and its SQLite companions (-wal, -shm, -journal) exist only as 0600: a new
    database is created so, an existing one is made so."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        if p.exists():
            os.chmod(p, 0o600)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner alone: a new 0600 file renamed over the old
    one (an existing file's wider mode is never kept)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
