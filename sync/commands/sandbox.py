"""`ecosync demo` and `ecosync sandbox serve`: the product on local CRM emulators."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click
from rich.console import Console


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Keep the demo's warehouse and files here (default: a temp dir).")
@click.option("--accounts", default=300, show_default=True)
@click.option("--opportunities", default=600, show_default=True)
@click.option("--partners", default=3, show_default=True)
@click.option("--seed", default=7, show_default=True)
def demo_command(directory: Path | None, accounts: int, opportunities: int, partners: int,
                 seed: int) -> None:
    """The whole loop on SQLite and sandbox CRMs; needs no configuration and no network."""
    from sync.demo import run_demo
    from sync.logs import configure_logging

    # The demo prints its own story; log lines would drown it. Warnings still show.
    configure_logging("console", "warning")
    run_demo(directory, accounts=accounts, opportunities=opportunities, partners=partners,
             seed=seed)


@click.group("sandbox")
def sandbox_group() -> None:
    """Local emulators of the Salesforce and HubSpot APIs."""


@sandbox_group.command("serve")
@click.option("--seed", default=0, show_default=True)
@click.option("--accounts", default=1000, show_default=True)
@click.option("--opportunities", default=2000, show_default=True)
@click.option("--partners", default=3, show_default=True)
@click.option("--latency-ms", default=0, show_default=True, help="Added to every request.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("ecosync-sandbox"), show_default=True)
def serve_command(seed: int, accounts: int, opportunities: int, partners: int,
                  latency_ms: int, directory: Path) -> None:
    """Serve both emulators with seeded data until Ctrl-C; prints URLs, tokens, CA file."""
    from sandbox.world import running_world

    console = Console()
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with running_world(directory.resolve(), seed=seed, accounts=accounts,
                       opportunities=opportunities, partners=partners,
                       latency_s=latency_ms / 1000) as world:
        config_path = directory.resolve() / "ecosync.toml"
        config_path.write_text(world.config_toml(f"sqlite:///{directory.resolve()}/ecosync.db"))
        sf, hs = world.salesforce, world.hubspot
        assert sf is not None
        assert hs is not None
        console.print("[bold]Salesforce sandbox[/bold]")
        console.print(f"  instance URL   {sf.url}")
        console.print(f"  client id      {sf.client_id}")
        console.print(f"  client secret  {sf.client_secret}")
        console.print(f"  username       {sf.username} / password {sf.password} "
                      f"/ security token {sf.security_token}")
        console.print(f"  access token   {sf.access_token}")
        console.print(f"  CA file        {sf.ca_file}")
        console.print("[bold]HubSpot sandbox[/bold]")
        console.print(f"  base URL       {hs.url}")
        console.print(f"  access token   {hs.access_token}")
        console.print(f"  CA file        {hs.ca_file}")
        console.print("[bold]Partner CSV files[/bold]")
        for pid, path in world.partner_files.items():
            console.print(f"  {pid:<28} {path}")
        console.print(f"[bold]ecosync config[/bold] {config_path} (secrets from env):")
        for name, value in world.env().items():
            console.print(f"  export {name}={value}")
        console.print("serving; Ctrl-C to stop")
        stop.wait()
    console.print("stopped")


ALL = [demo_command, sandbox_group]
