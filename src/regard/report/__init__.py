"""Counting what regard did: deliveries by state, uplift against the control group, the
shop's retention figures, the HTML page, and the backtest (``simulate``)."""

from regard.report.summary import CampaignReport, ReportDocument, build_report

__all__ = ["CampaignReport", "ReportDocument", "build_report"]
