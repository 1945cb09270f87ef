"""Persistence: the SQL tables, the database engine, blob storage and migrations."""
