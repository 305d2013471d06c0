"""``regard serve``: the HTTP server alone (unsubscribe links, provider callbacks)."""

from __future__ import annotations

import click

from regard.cli import App, pass_app


@click.command()
@pass_app
def serve(app: App) -> None:
    """Run the HTTP server until SIGTERM or SIGINT.

    It answers the unsubscribe links of marketing e-mails (/u/…), the providers' callbacks
    (/hooks/<provider>) and /healthz, on [server] listen (default 127.0.0.1:8787). Put it
    behind a reverse proxy with TLS (docs/operations.md); `regard daemon` runs it too when
    the config has a [server] table. One JSON line per request goes to stderr.

    \b
    Examples:
      regard serve
      regard --config /etc/regard/regard.toml serve
    """
    # imported when the command runs: `regard --help` stays fast
    from regard.server.run import serve as run_server
    from regard.server.run import setup_serve_logging

    config = app.config
    setup_serve_logging()
    click.get_current_context().exit(run_server(config))
