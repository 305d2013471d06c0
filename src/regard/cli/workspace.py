"""``regard init [DIR]``.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

from pathlib import Path

import click

from regard.cli import echo_json, json_option


@click.command()
@click.argument(
    "folder", metavar="[DIR]", default=".", type=click.Path(file_okay=False, path_type=Path)
)
@json_option
def init(folder: Path, as_json: bool) -> None:
    """Create a starter workspace in DIR (default: here): regard.toml, example campaigns
    and templates, delivering into a local outbox file, and config.example.toml with every
    key of regard.toml explained. Never overwrites a file.

    \b
      regard init myshop
      cd myshop && regard check
    """
    from regard.workspace import create_workspace

    created = create_workspace(folder)
    config = folder / "regard.toml"
    campaigns = sum(1 for p in created if p.parent.name == "campaigns")
    templates = sum(1 for p in created if p.parent.name == "templates")
    if as_json:
        echo_json({"config": str(config), "created": [str(p) for p in created]})
        return
    click.echo(f"created {config} with {campaigns} example campaigns and {templates} templates")
    where = "" if folder == Path(".") else f"cd {folder}\n  "
    click.echo(
        "\nnext steps:\n"
        f"  {where}edit regard.toml                    your shop's name, address and time zone\n"
        "                                      (every key: config.example.toml)\n"
        "  regard import contacts customers.csv\n"
        "  regard import events orders.csv\n"
        "  regard check                        every campaign rendered against sample contacts\n"
        "  regard plan                         what a run would send now\n"
        "  regard run                          send it (into outbox/messages.jsonl until you\n"
        "                                      configure a real provider)"
    )
