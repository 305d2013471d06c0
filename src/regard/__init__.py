"""regard: personal customer-retention campaigns, sent exactly once per occasion."""

__version__ = "0.1.0"
