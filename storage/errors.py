"""Storage's one error type: what the rest of the bot catches when the database fails.

Rules kept here:
- A SQLAlchemy error leaving a transaction (`Database.session()` or `Database.begin()`) is re-raised as
  `StorageError`, with the original as its `__cause__` (for the log), so nothing above storage imports SQLAlchemy
  to catch it: unreachable, locked past the busy timeout, a connection lost mid-statement, a statement refused.
- A broken constraint (`IntegrityError`: a unique key taken by another replica, a foreign key) is not a failure of
  the database but a conflict, and passes through as it is: the repository that expects one answers it (a
  delivery already recorded, a slot another replica claimed); one no repository expects is a bug, not an outage.
- The message says what failed, never the URL (a password may be in it) nor the statement's parameters.
- A URL `Database()` cannot use fails as one of the two subtypes below (start-up and the operator CLI word each its
  own way), its cause SQLAlchemy's error.
"""

from __future__ import annotations


class StorageError(Exception):
    """The bot's database could not do what was asked: the transaction was rolled back, nothing of it was kept."""

    @classmethod
    def from_error(cls, error: BaseException) -> StorageError:
        return cls(f"the database failed: {type(error).__name__}")


class UnsupportedDatabase(StorageError):
    """The URL names a database (or driver) SQLAlchemy has no dialect for."""


class NotADatabaseUrl(StorageError):
    """The text is not a database URL at all."""
