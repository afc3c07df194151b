"""Running iptables-save / iptables-restore (asyncio subprocesses), for whichever backend
this node uses.

Two iptables implementations share one command-line syntax: nf_tables (the default on
current Debian, `iptables-nft`) and legacy x_tables (`iptables-legacy`). Rules written with
one are invisible to the other's save, so the proxy must use the backend the rest of the node
uses. "auto" follows the iptables-wrappers heuristic Kubernetes uses: whichever backend
already holds more rules wins; with none anywhere, the one `iptables` itself points at.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

BACKENDS = ("nft", "legacy")


class IptablesError(Exception):
    pass


@dataclass(frozen=True)
class Iptables:
    """The save/restore commands of one backend; `prefix` runs them elsewhere (for example
    `nsenter --net=...` from the benchmark)."""

    backend: str
    save_cmd: tuple[str, ...]
    restore_cmd: tuple[str, ...]
    prefix: tuple[str, ...] = ()

    async def save(self, table: str = "") -> str:
        args = [*self.save_cmd, *(["-t", table] if table else [])]
        return await _run([*self.prefix, *args])

    async def restore(self, text: str) -> None:
        """One atomic transaction: either all of `text` applies or none of it."""
        await _run([*self.prefix, *self.restore_cmd, "-w", "5", "--noflush"], text)


async def _run(argv: Sequence[str], stdin: str | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise IptablesError(
            f"{' '.join(argv[:3])} exited {proc.returncode}: {err.decode(errors='replace').strip()}"
        )
    return out.decode()


def _commands(backend: str) -> Iptables:
    save, restore = f"iptables-{backend}-save", f"iptables-{backend}-restore"
    if shutil.which(save) is None or shutil.which(restore) is None:
        raise IptablesError(f"the {backend} iptables backend is not installed ({save})")
    return Iptables(backend, (save,), (restore,))


async def default_backend(prefix: Sequence[str] = ()) -> str:
    """The backend plain `iptables` uses: `iptables --version` says (nf_tables) or (legacy)."""
    version = await _run([*prefix, "iptables", "--version"])
    return "nft" if "nf_tables" in version else "legacy"


async def detect(choice: str = "auto", prefix: Sequence[str] = ()) -> Iptables:
    if choice in BACKENDS:
        found = _commands(choice)
    elif choice != "auto":
        raise IptablesError(f"unknown iptables backend {choice!r} (auto, nft or legacy)")
    else:
        counts: dict[str, int] = {}
        for backend in BACKENDS:
            try:
                candidate = _commands(backend)
                text = await _run([*prefix, *candidate.save_cmd])
            except IptablesError:
                continue
            counts[backend] = sum(1 for line in text.splitlines() if line.startswith("-A "))
        if not counts:
            raise IptablesError("no working iptables (neither iptables-nft nor iptables-legacy)")
        default = await default_backend(prefix)
        best = max(counts, key=lambda b: (counts[b], b == default))
        found = _commands(best)
    return Iptables(found.backend, found.save_cmd, found.restore_cmd, tuple(prefix))
