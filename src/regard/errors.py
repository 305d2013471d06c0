"""The errors a user sees. The CLI alone turns them into messages and exit codes."""


class RegardError(Exception):
    """Base of every error regard reports to a person. Exit status 1 unless said otherwise."""

    exit_code = 1


class ConfigError(RegardError):
    """regard.toml is missing, malformed or names something that does not exist."""


class InputError(RegardError):
    """An import file, campaign, template or argument is wrong; the message says where."""


class CampaignError(InputError):
    """A campaign file is invalid."""


class TemplateError(InputError):
    """A template does not parse or does not render."""


class StoreError(RegardError):
    """The store cannot be opened or written: its path, its permissions, its contents, or a
    schema from a newer regard."""


class ProviderError(RegardError):
    """A provider is misconfigured (not a failed delivery: those are recorded, not raised)."""


class DeliveriesFailed(RegardError):
    """The run finished but some deliveries failed (exit status 3)."""

    exit_code = 3
