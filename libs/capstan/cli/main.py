"""The `capstan` command: kubectl's verbs against the capstan API.

One asyncio.run per invocation; every verb module registers its subcommands; errors go to
stderr as `error: ...` or `Error from server (Reason): ...` with exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from capstan.apierrors import ApiError
from capstan.cli import (
    apply,
    config,
    delete,
    describe,
    edit,
    get,
    info,
    labels,
    nodes,
    run,
    streams,
    top,
    workloads,
)
from capstan.cli.common import CliError, Session, format_api_error
from capstan.machinery.manifests import ManifestError

VERB_MODULES = (
    get,
    describe,
    apply,
    delete,
    edit,
    labels,
    run,
    nodes,
    workloads,
    streams,
    top,
    info,
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    config.add_connection_flags(common)
    parser = argparse.ArgumentParser(
        prog="capstan",
        description="capstan controls a capstan cluster, the way kubectl controls Kubernetes.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for module in VERB_MODULES:
        module.register(sub, [common])
    config.register(sub)
    return parser


def split_dash_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after the first `--` is the container command (run, exec)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


# The list-valued positionals of the verbs (TYPE NAME..., KEY=VAL..., NODE..., PORT...).
POSITIONAL_LISTS = ("resources", "args", "nodes", "ports")


def _take_interleaved_positionals(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]
) -> None:
    """argparse stops filling `nargs` positionals at the first option, so in
    `label deploy web -n shop team=x` the `team=x` comes back unparsed; kubectl accepts
    flags anywhere, so such leftovers join the verb's positional list."""
    if not extra:
        return
    unknown = [e for e in extra if e.startswith("-") and e != "-"]
    target = next(
        (getattr(args, n) for n in POSITIONAL_LISTS if isinstance(getattr(args, n, None), list)),
        None,
    )
    if unknown or target is None:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    target.extend(extra)


async def _dispatch(args: argparse.Namespace) -> int:
    session = Session(args)
    try:
        code: int = await args.handler(session, args)
        return code
    finally:
        await session.close()


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    own, dash_args = split_dash_args(raw)
    parser = build_parser()
    args, extra = parser.parse_known_args(own)
    _take_interleaved_positionals(parser, args, extra)
    args.dash_args = dash_args
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0 if args.verb is None else 1
    try:
        if not getattr(args, "needs_client", True):
            code = int(args.handler(args))
        else:
            code = asyncio.run(_dispatch(args))
    except (CliError, ManifestError) as e:
        print("\n".join(f"error: {line}" for line in str(e).splitlines()), file=sys.stderr)
        return 1
    except ApiError as e:
        print(format_api_error(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
