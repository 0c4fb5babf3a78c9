"""shadow: a dual-write shadow-traffic verification proxy for SQLite -> PostgreSQL moves."""

__version__ = "0.1.0"
