"""Running a probe or a lifecycle hook action: exec, httpGet, tcpSocket, sleep.

Probes and hooks share their actions. `exec` runs a command in the container
through the runtime; `httpGet` and `tcpSocket` connect to the pod's IP (or
the probe's `host`) from the node, as the kubelet does, so they reach the
pod's network namespace over the node bridge. Outcomes carry the kubelet's
wording, since it ends up in events users read: `HTTP probe failed with
statuscode: 503`, `dial tcp 10.42.0.7:80: connect: connection refused`,
`command "sh -c false" timed out`.

`run_probe` answers (True/False, output) or raises `ProbeError` when the probe
could not be run at all, in which case the result is thrown away.
"""

from __future__ import annotations

import asyncio
import errno
import shlex
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubi.node.runtime.base import Runtime, RuntimeError_

MAX_OUTPUT = 10 * 1024
USER_AGENT = "kube-probe/1.33"


class ProbeError(Exception):
    """The probe could not be run (as opposed to running and failing)."""


@dataclass
class Target:
    """Where a probe or hook acts: the runtime container and the pod's address."""

    runtime: Runtime
    container_id: str
    container: dict[str, Any]
    pod_ip: str


def resolve_port(port: Any, container: dict[str, Any]) -> int:
    """An int port, or a named port of the container."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for entry in container.get("ports") or []:
        if entry.get("name") == text:
            return int(entry.get("containerPort") or 0)
    raise ProbeError(f"couldn't find port: {text} in {container.get('name', '')}")


def _dial_error(exc: BaseException, host: str, port: int) -> str:
    """Go's net.Dial wording for a failed connection."""
    address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"dial tcp {address}: i/o timeout"
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
    if code == errno.ECONNREFUSED:
        return f"dial tcp {address}: connect: connection refused"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"dial tcp {address}: connect: no route to host"
    return f"dial tcp {address}: {exc}"


# ---- exec ---------------------------------------------------------------------------


async def exec_command(target: Target, argv: list[str], timeout: float | None) -> tuple[int, str]:
    """Run `argv` in the container; (exit code, combined output). TimeoutError on timeout."""
    session = await target.runtime.exec(target.container_id, argv, tty=False, stdin=False)
    chunks: list[bytes] = []

    async def drain(read: Any) -> None:
        while True:
            data = await read()
            if not data:
                return
            if sum(len(c) for c in chunks) < MAX_OUTPUT:
                chunks.append(data)

    async def run() -> int:
        await asyncio.gather(drain(session.read_stdout), drain(session.read_stderr))
        return await session.wait()

    try:
        code = await asyncio.wait_for(run(), timeout)
    finally:
        await session.close()
    return code, b"".join(chunks)[:MAX_OUTPUT].decode(errors="replace")


async def exec_probe(target: Target, argv: list[str], timeout: float) -> tuple[bool, str]:
    try:
        code, output = await exec_command(target, argv, timeout)
    except TimeoutError:
        return False, f'command "{shlex.join(argv)}" timed out'
    except (RuntimeError_, OSError, LookupError) as exc:
        raise ProbeError(str(exc)) from exc
    return code == 0, output


# ---- http and tcp ---------------------------------------------------------------------


def http_url(action: dict[str, Any], target: Target) -> tuple[str, str, int]:
    """(url, host, port) of an httpGet action."""
    scheme = (action.get("scheme") or "HTTP").lower()
    host = action.get("host") or target.pod_ip or "127.0.0.1"
    port = resolve_port(action.get("port"), target.container)
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}{path}", host, port


async def http_get(action: dict[str, Any], target: Target, timeout: float | None,
                   session: aiohttp.ClientSession) -> tuple[int | None, str]:
    """(status code, error text): the status when the server answered."""
    url, host, port = http_url(action, target)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        if header.get("name"):
            headers[header["name"]] = header.get("value", "")
    try:
        async with session.get(url, headers=headers, ssl=False, max_redirects=10,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.content.read(MAX_OUTPUT)
            return resp.status, ""
    except TimeoutError:
        return None, (f'Get "{url}": context deadline exceeded '
                      "(Client.Timeout exceeded while awaiting headers)")
    except aiohttp.ClientConnectorError as exc:
        return None, f'Get "{url}": {_dial_error(exc, host, port)}'
    except aiohttp.ClientError as exc:
        return None, f'Get "{url}": {exc}'


async def http_probe(action: dict[str, Any], target: Target, timeout: float,
                     session: aiohttp.ClientSession) -> tuple[bool, str]:
    code, error = await http_get(action, target, timeout, session)
    if code is None:
        return False, error
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def tcp_probe(action: dict[str, Any], target: Target, timeout: float) -> tuple[bool, str]:
    host = action.get("host") or target.pod_ip or "127.0.0.1"
    port = resolve_port(action.get("port"), target.container)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return False, _dial_error(exc, host, port)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True, ""


async def run_probe(probe: dict[str, Any], target: Target,
                    session: aiohttp.ClientSession) -> tuple[bool, str]:
    """Run one probe attempt; (passed, output). Raises ProbeError if it could not run."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if probe.get("exec") is not None:
        return await exec_probe(target, list(probe["exec"].get("command") or []), timeout)
    if probe.get("httpGet") is not None:
        return await http_probe(probe["httpGet"], target, timeout, session)
    if probe.get("tcpSocket") is not None:
        return await tcp_probe(probe["tcpSocket"], target, timeout)
    if probe.get("grpc") is not None:
        raise ProbeError("grpc probes are not supported on this node")
    raise ProbeError("missing probe handler")


# ---- lifecycle hooks ---------------------------------------------------------------------


async def run_hook(handler: dict[str, Any], target: Target, *, pod_name: str,
                   session: aiohttp.ClientSession, timeout: float | None = None) -> str | None:
    """Run a postStart or preStop handler; None on success, else the failure message."""
    name = target.container.get("name", "")
    where = f'for Container "{name}" in Pod "{pod_name}"'
    if handler.get("exec") is not None:
        argv = list(handler["exec"].get("command") or [])
        try:
            code, output = await exec_command(target, argv, timeout)
        except TimeoutError:
            return f"Exec lifecycle hook ({_go_list(argv)}) {where} failed - error: timed out"
        except (RuntimeError_, OSError, LookupError) as exc:
            return f"Exec lifecycle hook ({_go_list(argv)}) {where} failed - error: {exc}"
        if code == 0:
            return None
        return (f"Exec lifecycle hook ({_go_list(argv)}) {where} failed - error: command "
                f"'{' '.join(argv)}' exited with {code}: , message: {_go_quote(output)}")
    if handler.get("httpGet") is not None:
        action = handler["httpGet"]
        status: int | None
        try:
            status, error = await http_get(action, target, timeout, session)
        except ProbeError as exc:
            status, error = None, str(exc)
        if status is not None and 200 <= status < 400:
            return None
        if status is not None:
            error = f"HTTP lifecycle hook failed with status code: {status}"
        return (f"HTTP lifecycle hook ({action.get('path') or '/'}) {where} failed - "
                f'error: {error}, message: ""')
    if handler.get("sleep") is not None:
        seconds = float(handler["sleep"].get("seconds") or 0)
        try:
            await asyncio.wait_for(asyncio.sleep(seconds), timeout)
        except TimeoutError:
            pass
        return None
    # tcpSocket hooks are accepted by the API but, as upstream, do nothing.
    return None


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
