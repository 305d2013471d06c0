"""Campaigns: the TOML model, loading with precise errors, and the audience grammar."""

from regard.campaigns.model import Campaign

__all__ = ["Campaign"]
