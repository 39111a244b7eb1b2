"""Exec, attach, port-forward and pod traffic on the host runtime (root)."""

from __future__ import annotations

import asyncio

import pytest

from kubi.node.runtime.base import RuntimeError_
from kubi.node.runtime.host.streams import AttachSession, ExecSession
from tests.unit import test_runtime_host_support as support
from tests.unit.test_runtime_host_support import (
    PYTHON,
    Env,
    log_text,
    needs_root,
)

pytestmark = needs_root
host_env = support.host_env


async def read_all(read: object) -> bytes:
    out = b""
    while chunk := await read():  # type: ignore[operator]
        out += chunk
    return out


async def read_until(session: ExecSession | AttachSession, needle: bytes,
                     timeout: float = 10.0) -> bytes:
    out = b""
    async with asyncio.timeout(timeout):
        while needle not in out:
            chunk = await session.read_stdout()
            if not chunk:
                break
            out += chunk
    return out


async def test_exec_without_tty_sees_the_container(host_env: Env) -> None:
    sid = await host_env.sandbox("ex")
    volume = host_env.root / "vol"
    volume.mkdir()
    (volume / "f").write_text("volume-data")
    from kubi.node.runtime.base import Mount
    cid = await host_env.container(sid, "c", ["sleep", "300"], env={"GREETING": "hi"},
                                   mounts=[Mount(str(volume), f"/tmp/kubt-{host_env.tag}")])
    session = await host_env.runtime.exec(cid, ["sh", "-c", (
        f"hostname; echo $GREETING; cat /tmp/kubt-{host_env.tag}/f; echo; "
        "echo oops >&2; cat /proc/1/comm; exit 4")], tty=False, stdin=False)
    out, err = await asyncio.gather(read_all(session.read_stdout), read_all(session.read_stderr))
    assert await session.wait() == 4
    await session.close()
    assert out.decode().splitlines() == ["ex", "hi", "volume-data", "sleep"]
    assert err == b"oops\n"


async def test_exec_with_stdin_pipe(host_env: Env) -> None:
    sid = await host_env.sandbox("exin")
    cid = await host_env.container(sid, "c", ["sleep", "300"])
    session = await host_env.runtime.exec(cid, ["tr", "a-z", "A-Z"], tty=False, stdin=True)
    await session.write_stdin(b"shout\n")
    await session.close_stdin()
    assert await read_all(session.read_stdout) == b"SHOUT\n"
    assert await session.wait() == 0
    await session.close()


async def test_exec_with_tty_and_resize(host_env: Env) -> None:
    sid = await host_env.sandbox("tty")
    cid = await host_env.container(sid, "c", ["sleep", "300"])
    session = await host_env.runtime.exec(cid, ["sh"], tty=True, stdin=True)
    await session.resize(100, 30)
    await session.write_stdin(b"tty >/dev/null && echo IS-A-TTY; stty size; exit 5\n")
    out = await read_until(session, b"30 100")
    assert b"IS-A-TTY" in out and b"30 100" in out
    assert await session.wait() == 5
    assert await session.read_stderr() == b""
    await session.close()


async def test_exec_errors(host_env: Env) -> None:
    sid = await host_env.sandbox("exerr")
    cid = await host_env.container(sid, "c", ["sleep", "300"])
    with pytest.raises(RuntimeError_, match="executable file not found"):
        await host_env.runtime.exec(cid, ["kubt-missing"], tty=False, stdin=False)
    done = await host_env.container(sid, "done", ["true"])
    await host_env.runtime.wait_container(done)
    with pytest.raises(RuntimeError_, match="not running"):
        await host_env.runtime.exec(done, ["true"], tty=False, stdin=False)


async def test_closing_an_exec_kills_the_command(host_env: Env) -> None:
    sid = await host_env.sandbox("excl")
    cid = await host_env.container(sid, "c", ["sleep", "300"])
    session = await host_env.runtime.exec(cid, ["sh", "-c", "echo started; exec sleep 300"],
                                          tty=False, stdin=False)
    assert await session.read_stdout() == b"started\n"
    await session.close()

    async def sleeps() -> int:
        probe = await host_env.runtime.exec(
            cid, ["sh", "-c", "cat /proc/[0-9]*/comm"], tty=False, stdin=False)
        names = (await read_all(probe.read_stdout)).decode().split()
        await probe.wait()
        await probe.close()
        return names.count("sleep")

    async with asyncio.timeout(10):
        while await sleeps() != 1:
            await asyncio.sleep(0.02)


async def test_attach_with_stdin_once(host_env: Env) -> None:
    sid = await host_env.sandbox("att")
    cid = await host_env.container(sid, "c", ["cat"], stdin=True, stdin_once=True)
    session = await host_env.runtime.attach(cid, tty=False, stdin=True)
    await session.write_stdin(b"hello\n")
    assert await read_until(session, b"hello\n") == b"hello\n"
    await session.close_stdin()
    assert await asyncio.wait_for(session.wait(), 10) == 0
    await session.close()
    assert log_text(host_env.log_path("att", "c")) == "hello"


async def test_attach_with_tty(host_env: Env) -> None:
    sid = await host_env.sandbox("atty")
    cid = await host_env.container(sid, "c", ["sh"], stdin=True, tty=True)
    session = await host_env.runtime.attach(cid, tty=True, stdin=True)
    await session.resize(90, 20)
    await session.write_stdin(b"stty size; exit 3\n")
    assert b"20 90" in await read_until(session, b"20 90")
    assert await asyncio.wait_for(session.wait(), 10) == 3
    await session.close()


async def test_pod_to_pod_node_to_pod_and_port_forward(host_env: Env) -> None:
    a = await host_env.sandbox("server")
    b = await host_env.sandbox("client")
    a_ip = (await host_env.runtime.pod_sandbox_status(a)).ip
    await host_env.container(a, "http", [PYTHON, "-m", "http.server", "8080",
                                         "--bind", "0.0.0.0"])
    await host_env.container(a, "local", [PYTHON, "-c", (
        "import socket\ns=socket.socket(); s.bind(('127.0.0.1', 9090)); s.listen()\n"
        "while True:\n c,_=s.accept(); c.sendall(b'loopback-only'); c.close()\n")])

    async def node_get() -> bytes:
        reader, writer = await asyncio.open_connection(a_ip, 8080)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    async with asyncio.timeout(15):
        while True:
            try:
                assert b"200 OK" in await node_get()
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.05)
    client = await host_env.container(b, "get", [PYTHON, "-c", (
        "import urllib.request\n"
        f"print(urllib.request.urlopen('http://{a_ip}:8080/', timeout=5).status)")])
    status = await host_env.runtime.wait_container(client)
    assert status.exit_code == 0, log_text(host_env.log_path("client", "get"))
    assert log_text(host_env.log_path("client", "get")) == "200"
    # The request shows in the server's log.
    assert "GET / HTTP" in log_text(host_env.log_path("server", "http"))

    async with asyncio.timeout(10):
        while True:
            try:
                reader, writer = await host_env.runtime.port_forward(a, 9090)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.05)
    assert await reader.read() == b"loopback-only"
    writer.close()
    # The loopback-only server is not reachable from the node.
    with pytest.raises(OSError):
        await asyncio.open_connection(a_ip, 9090)
