#!/usr/bin/env python3
"""The lab: ministack 1.5.33 on 127.0.0.1 with AUTH=true, corrected by
lab_plugin and fronted by the /_lab/ admin API (lab_admin).

    tests/lab/.venv/bin/python tests/lab/labserver.py --port 4566 \
        [--replication-delay 1.0] [--delay 'bucket/prefix/*=5'] [--fail 'bucket/key-glob'] \
        [--fault-rate 0.3] [--fault-status 503] [--fault-services s3,sts] \
        [--latency-ms 200] [--latency-rate 1.0] [--sts-session-seconds S] [--deterministic-key-ids]
        [--destination-delay 'dst-glob=4'] [--destination-fail 'dst-glob'] [--lose-replicas 'dst-glob']
        [--object-lock-day-seconds 86400]
        [--sessions-file PATH]
        [--exit-with-parent PID] [--verbose]

Replaces ministack's own entry point (`python -m ministack`), which binds
0.0.0.0 and cannot be patched before it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
BIND_HOST = "127.0.0.1"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    p.add_argument("--replication-delay", type=float, default=1.0,
                   help="seconds from PutObject to COMPLETED/FAILED (default 1.0)")
    p.add_argument("--delay", action="append", default=[], metavar="PATTERN=SECONDS",
                   help="replication delay for source objects matching the bucket/key glob (repeatable)")
    p.add_argument("--fail", action="append", default=[], metavar="PATTERN",
                   help="force FAILED for source objects matching the bucket/key glob (repeatable)")
    p.add_argument("--destination-delay", action="append", default=[], metavar="PATTERN=SECONDS",
                   help="replication delay to destination buckets matching the glob (repeatable)")
    p.add_argument("--destination-fail", action="append", default=[], metavar="PATTERN",
                   help="replication to destination buckets matching the glob fails (repeatable)")
    p.add_argument("--lose-replicas", action="append", default=[], metavar="PATTERN",
                   help="replication to destination buckets matching the glob completes but keeps no replica")
    p.add_argument("--object-lock-day-seconds", type=float, default=86400.0,
                   help="seconds an Object Lock retention day lasts (default 86400)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability of an injected error")
    p.add_argument("--fault-status", type=int, default=503, help="HTTP status of injected errors (503, 500, 400)")
    p.add_argument("--fault-services", default="s3", help="comma-separated services faults apply to (default s3)")
    p.add_argument("--latency-ms", type=float, default=0, help="injected latency in milliseconds")
    p.add_argument("--latency-rate", type=float, default=1.0, help="probability of the injected latency")
    p.add_argument("--sts-session-seconds", type=float, default=0,
                   help="cap AssumeRole sessions at this many seconds (0 = as requested)")
    p.add_argument("--deterministic-key-ids", action="store_true",
                   help="KMS key ids derived from account, region and description: a restarted lab "
                        "provisioned again with the same suffix has the same key ARNs")
    p.add_argument("--sessions-file", metavar="PATH",
                   help="keep STS sessions in PATH (JSON lines) across restarts of the lab")
    p.add_argument("--exit-with-parent", type=int, metavar="PID",
                   help="exit when this process disappears (polled every 0.5 s)")
    p.add_argument("--verbose", action="store_true", help="ministack INFO logs and access logs")
    p.add_argument("--stock", action="store_true",
                   help="do NOT apply lab_plugin (stock ministack behaviour, for comparison)")
    return p.parse_args(argv)


def configure_environment(args: argparse.Namespace) -> None:
    """Environment ministack reads at import time."""
    os.environ.update({
        "BIND_HOST": BIND_HOST,
        "GATEWAY_PORT": str(args.port),
        "AUTH": "true",
        "LOG_LEVEL": "INFO" if args.verbose else "ERROR",
        "S3_PERSIST": "0",
        "PERSIST_STATE": "0",
        "SFTP_ENABLED": "0",        # no extra listeners: everything stays on our one port
        "IOT_MTLS_ENABLED": "0",
        "USE_SSL": "0",
        "MINISTACK_TEST_NO_AUTOSTART": "1",
    })
    # A real credential in the environment would become a root key of the default account.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)


def build_state(args: argparse.Namespace):
    from lab_state import ConfigError, LabState

    state = LabState(args.replication_delay)
    try:
        for spec in args.delay:
            pattern, sep, seconds = spec.rpartition("=")
            if not sep:
                raise ConfigError(f"--delay {spec!r}: expected PATTERN=SECONDS")
            state.add_delay(pattern, float(seconds))
        for pattern in args.fail:
            state.add_fail(pattern)
        destination_delays = []
        for spec in args.destination_delay:
            pattern, sep, seconds = spec.rpartition("=")
            if not sep:
                raise ConfigError(f"--destination-delay {spec!r}: expected PATTERN=SECONDS")
            destination_delays.append({"pattern": pattern, "seconds": float(seconds)})
        state.update({"destination_delays": destination_delays, "destination_fail": args.destination_fail,
                      "lose_replicas": args.lose_replicas, "object_lock_day_seconds": args.object_lock_day_seconds})
        state.update({"faults": {
            "error_rate": args.fault_rate, "status": args.fault_status,
            "services": [s.strip() for s in args.fault_services.split(",") if s.strip()],
            "latency_ms": args.latency_ms, "latency_rate": args.latency_rate,
        }, "sts_session_seconds": args.sts_session_seconds})
    except (ConfigError, ValueError) as exc:
        sys.exit(f"labserver: {exc}")
    return state


def quiet_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger().setLevel(level)
    for name in ("ministack", "hypercorn.error", "hypercorn.access", "lab"):
        logging.getLogger(name).setLevel(level)


async def watch_parent(pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set()
            return
        except PermissionError:
            pass  # exists, owned by someone else
        await asyncio.sleep(0.5)


async def serve(app, port: int, verbose: bool, parent: int | None) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{BIND_HOST}:{port}"]
    config.keep_alive_timeout = 75
    config.loglevel = "INFO" if verbose else "ERROR"
    config.accesslog = logging.getLogger("hypercorn.access") if verbose else None
    config.graceful_timeout = 1.0

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if parent:
        asyncio.create_task(watch_parent(parent, stop))
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)


def main(argv=None) -> None:
    args = parse_args(argv)
    configure_environment(args)
    sys.path.insert(0, LAB_DIR)
    state = build_state(args)

    import ministack.app as ms_app  # after the environment is set

    import lab_plugin
    from lab_admin import LabMiddleware

    quiet_logging(args.verbose)
    if not args.stock:
        lab_plugin.install(state)
        import lab_estate_plugin  # discovery's reads; after lab_plugin, which wraps the same entry point
        lab_estate_plugin.install()
    lab_plugin.install_test_knobs(state, args.deterministic_key_ids, args.sessions_file)
    app = LabMiddleware(ms_app.app, state)
    if args.verbose:
        print(f"labserver: listening on http://{BIND_HOST}:{args.port}", file=sys.stderr)
    asyncio.run(serve(app, args.port, args.verbose, args.exit_with_parent))


if __name__ == "__main__":
    main()
