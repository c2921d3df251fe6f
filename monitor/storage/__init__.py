"""Storage: the engine and sessions, the tables, and keyword-only repository functions."""
