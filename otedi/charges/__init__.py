"""Charge entry: read extracts, map columns, validate rows, load idempotently."""
