"""Adapter tests: one table-driven module per provider."""
