"""Campaigns: the TOML model, loading with precise errors, and the audience grammar."""

from regard.campaigns.loader import CampaignSet, load_campaign, load_campaigns
from regard.campaigns.model import Campaign

__all__ = ["Campaign", "CampaignSet", "load_campaign", "load_campaigns"]
