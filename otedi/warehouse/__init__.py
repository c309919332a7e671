"""The SQL warehouse: the system of record (SQLite by default, PostgreSQL in production)."""
