"""The `kubi` command.

`kubi up` runs a whole cluster in the foreground on one data directory: the
API server on the embedded SQLite store (later components join the same
command). It writes an admin kubeconfig and prints how to use it, holds a lock
on the data directory so that a second `kubi up` on it refuses to start, and
shuts down cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from kubi import __version__, gctune
from kubi.apiserver.plugins import PLUGINS, unknown_plugins


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/kubi")
    return Path.home() / ".local" / "share" / "kubi"


class DataDirLock:
    """An exclusive lock on `<data-dir>/kubi.lock`, held while the cluster runs."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "kubi.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise click.ClickException(
                f"kubi is already running on data dir {self.path.parent} (pid {holder}); "
                "stop it first or choose another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _setup_logging(data_dir: Path, verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    file_handler = logging.FileHandler(data_dir / "kubi.log")
    file_handler.setLevel(logging.INFO)
    handlers.append(file_handler)
    logging.basicConfig(
        level=min(level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )
    handlers[0].setLevel(level)


def _admission_plugins(_ctx: click.Context, _param: click.Parameter,
                       value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = unknown_plugins(names)
    if unknown:
        raise click.BadParameter(f'admission plugin "{unknown[0]}" is unknown '
                                 f"(known: {', '.join(PLUGINS)})")
    return names


@click.group()
@click.version_option(__version__, prog_name="kubi")
def main() -> None:
    """kubi: a Kubernetes-compatible cluster in Python."""
    # Every kubi process that runs for long holds the cluster's objects in
    # memory: collect cycles among young objects only (see kubi.gctune).
    gctune.tune()


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the cluster keeps its state (default /var/lib/kubi as root, "
                   "else ~/.local/share/kubi).")
@click.option("--port", type=int, default=6443, show_default=True,
              help="HTTPS port of the API server.")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None,
              help="Where to write the admin kubeconfig (default <data-dir>/kubeconfig.yaml).")
@click.option("--bind-address", default="0.0.0.0", show_default=True,
              help="Address the API server listens on.")
@click.option("--no-controllers", is_flag=True,
              help="Run the API server alone, without the controller manager and scheduler.")
@click.option("--sim-nodes", type=click.IntRange(min=0), default=0,
              help="Register this many simulated nodes (pods on them are simulated).")
@click.option("--local-node", is_flag=True,
              help="Also run this machine as a node when --sim-nodes is given.")
@click.option("--disable-admission-plugins", "disabled_admission", default="",
              metavar="NAMES", callback=_admission_plugins,
              help="Admission plugins to turn off, comma-separated: "
                   + ", ".join(PLUGINS) + ". Without controllers there is no "
                   "`default` ServiceAccount, so pods need ServiceAccount off.")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def up(data_dir: Path | None, port: int, kubeconfig: Path | None, bind_address: str,
       no_controllers: bool, sim_nodes: int, local_node: bool,
       disabled_admission: tuple[str, ...], verbose: int) -> None:
    """Run a single-node cluster in the foreground."""
    started = time.monotonic()
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = DataDirLock(data_dir)
    lock.acquire()
    try:
        _setup_logging(data_dir, verbose)
        kubeconfig = (kubeconfig or data_dir / "kubeconfig.yaml").expanduser().resolve()
        local = not no_controllers and (local_node or not sim_nodes) and os.geteuid() == 0
        _run(_up(data_dir, port, kubeconfig, bind_address, started, not no_controllers,
                 sim_nodes, local, disabled_admission))
    finally:
        lock.release()


def _run(coro) -> None:
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


def _local_agent_argv(pki, api_url: str, data_dir: Path,
                      unix_socket: Path | None = None) -> list[str]:
    """The command line of this machine's node agent, with its credentials."""
    import socket
    import sys

    from kubi.apiserver.pki import serving_hosts
    from kubi.cli.kubeconfig import kubeconfig_for, write_kubeconfig
    from kubi.controllers.endpoints import primary_ipv4

    node = socket.gethostname().lower()
    config = data_dir / "agent.kubeconfig"
    write_kubeconfig(kubeconfig_for(pki, api_url, "agent-client", f"system:node:{node}",
                                    ("system:nodes",), unix_socket=unix_socket), config)
    address = primary_ipv4()
    serving = pki.issue("agent-serving", common_name=f"system:node:{node}", server=True,
                        hosts=serving_hosts((address,) if address else ()))
    return [sys.executable, "-m", "kubi", "agent", "--kubeconfig", str(config),
            "--node-name", node, "--data-dir", str(data_dir / "agent"),
            "--tls-cert", str(serving.cert), "--tls-key", str(serving.key),
            "--client-ca", str(pki.ca.cert), "--drain-on-exit"]


async def _up(data_dir: Path, port: int, kubeconfig: Path, bind: str, started: float,
              controllers: bool, sim_nodes: int, local_node: bool,
              disabled_admission: tuple[str, ...] = ()) -> None:
    from kubi.apiserver.server import APIServer, ServerConfig
    from kubi.cli.components import (
        CLUSTER_DNS_IP,
        Supervisor,
        add_dns_address,
        components_argv,
        remove_dns_address,
    )
    from kubi.cli.kubeconfig import kubeconfig_for, write_admin_kubeconfig, write_kubeconfig
    from kubi.store.sqlite import SqliteStore

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    config = ServerConfig(data_dir=data_dir, port=port, bind=bind,
                          disabled_admission=disabled_admission)
    server = APIServer(config, SqliteStore(str(data_dir / "state.db")))
    try:
        await server.start()
    except OSError as exc:
        await server.stop()
        raise click.ClickException(f"cannot listen on port {port}: {exc.strerror}") from None
    api_url = f"https://127.0.0.1:{port}"
    write_admin_kubeconfig(server.pki, kubeconfig, api_url)
    supervisor = None
    dns_added = False
    if controllers or sim_nodes:
        cm_config = data_dir / "controller-manager.kubeconfig"
        write_kubeconfig(kubeconfig_for(server.pki, api_url, "controller-manager",
                                        "system:kube-controller-manager",
                                        unix_socket=server.unix_socket), cm_config)
        dns_address = None
        if local_node:
            # Served whether or not an earlier run left the address behind;
            # removed at the end only if this run added it.
            dns_added = add_dns_address()
            dns_address = CLUSTER_DNS_IP
        argv = components_argv(cm_config, controllers=controllers, sim_nodes=sim_nodes,
                               dns_address=dns_address)
        supervisor = Supervisor(argv, data_dir / "components.log")
        supervisor.start()
    agent = None
    if local_node:
        agent = Supervisor(_local_agent_argv(server.pki, api_url, data_dir, server.unix_socket),
                           data_dir / "agent.log", name="agent")
        agent.start()
    elapsed = time.monotonic() - started
    click.echo(
        f"kubi is up in {elapsed:.2f}s: API server on https://127.0.0.1:{port}\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  kubectl get namespaces",
        err=True,
    )
    try:
        await stop.wait()
    finally:
        click.echo("kubi: shutting down", err=True)
        if agent is not None:
            # The agent drains on SIGTERM: no pod process, mount, veth, netns or
            # cgroup outlives the cluster. Give it the pods' grace periods.
            await agent.stop(timeout=45.0)
        if supervisor is not None:
            await supervisor.stop()
        if dns_added:
            remove_dns_address()
        await server.stop()


def _component_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


_KUBECONFIG = click.option("--kubeconfig", type=click.Path(exists=True, path_type=Path),
                           required=True, help="How to reach and authenticate to the API server.")
_VERBOSE = click.option("-v", "--verbose", count=True, help="More logging.")


@main.command("controller-manager")
@_KUBECONFIG
@_VERBOSE
def controller_manager(kubeconfig: Path, verbose: int) -> None:
    """Run the controller manager against a cluster."""
    from kubi.cli.components import run_components

    _component_logging(verbose)
    _run(run_components(kubeconfig, controllers=True))


@main.command("sim-node")
@_KUBECONFIG
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many simulated nodes to register.")
@_VERBOSE
def sim_node(kubeconfig: Path, count: int, verbose: int) -> None:
    """Register simulated nodes that run pods as simulations (as kwok does)."""
    from kubi.cli.components import run_components

    _component_logging(verbose)
    _run(run_components(kubeconfig, controllers=False, sim_nodes=count))


@main.command("components", hidden=True)
@_KUBECONFIG
@click.option("--no-controllers", is_flag=True)
@click.option("--no-scheduler", is_flag=True)
@click.option("--sim-nodes", type=click.IntRange(min=0), default=0)
@click.option("--identity", default=None)
@click.option("--dns-address", default=None)
@_VERBOSE
def components(kubeconfig: Path, no_controllers: bool, no_scheduler: bool, sim_nodes: int,
               identity: str | None, dns_address: str | None, verbose: int) -> None:
    """The control-plane clients `kubi up` runs in its child process."""
    from kubi.cli.components import run_components

    _component_logging(verbose)
    _run(run_components(kubeconfig, controllers=not no_controllers,
                        scheduler=not no_scheduler, sim_nodes=sim_nodes, identity=identity,
                        dns_address=dns_address))


@main.command()
@_KUBECONFIG
@click.option("--address", default="10.43.0.10", show_default=True,
              help="Address to serve on (it must exist on this machine).")
@click.option("--port", type=int, default=53, show_default=True)
@click.option("--domain", default="cluster.local", show_default=True)
@_VERBOSE
def dns(kubeconfig: Path, address: str, port: int, domain: str, verbose: int) -> None:
    """Serve cluster DNS (Services, StatefulSet pods) for the cluster."""
    from kubi.dns.main import run as run_dns

    _component_logging(verbose)
    _run(run_dns(kubeconfig, address, port, domain=domain))


@main.command()
@_KUBECONFIG
@click.option("--node-name", default=None, help="The Node's name (default: the host name).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the agent keeps pods' state (default /var/lib/kubi/agent as root).")
@click.option("--port", type=int, default=10250, show_default=True,
              help="HTTPS port for logs, exec and attach.")
@click.option("--tls-cert", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--tls-key", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--client-ca", type=click.Path(exists=True, path_type=Path), default=None,
              help="CA of the API server's client certificate (default: the kubeconfig's).")
@click.option("--drain-on-exit", is_flag=True,
              help="Remove every pod from the machine when stopping.")
@_VERBOSE
def agent(kubeconfig: Path, node_name: str | None, data_dir: Path | None, port: int,
          tls_cert: Path | None, tls_key: Path | None, client_ca: Path | None,
          drain_on_exit: bool, verbose: int) -> None:
    """Join a cluster as a node that runs pods on this machine."""
    from kubi.node.agent.main import run as run_agent

    _component_logging(verbose)
    _run(run_agent(kubeconfig, node_name, data_dir, drain=drain_on_exit, tls_cert=tls_cert,
                   tls_key=tls_key, client_ca=client_ca, port=port))


@main.command()
@_KUBECONFIG
@_VERBOSE
def scheduler(kubeconfig: Path, verbose: int) -> None:
    """Run the scheduler against a cluster."""
    from kubi.cli.components import run_components

    _component_logging(verbose)
    _run(run_components(kubeconfig, controllers=False, scheduler=True))


if __name__ == "__main__":
    main()
