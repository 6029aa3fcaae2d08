"""The image's promises agree everywhere they are written (deploy/test.sh runs this).

deploy/Dockerfile (the build for users with registry access) is the source:
deploy/image/build.sh reads its USER, EXPOSE, ENTRYPOINT, CMD and binary path, and checks
the built image against them. This checks, without building anything, that the rest of
the deploy kit says the same: the Kubernetes manifests (both variants) name the image
build.sh tags (IMAGE_NAME:<Cargo.toml version>), run it as the Dockerfile's uid and gid,
and listen on its port; the Dockerfile's ENTRYPOINT is the binary it copies, its CMD
listens on the port it exposes, and the systemd unit runs the same binary path.

    python deploy/image/agree.py        # exit 1 and one line per disagreement
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = [
    ROOT / "deploy/kubernetes/deployment.yaml",
    ROOT / "deploy/kubernetes/sharded/statefulset.yaml",
]


def one_line(text: str, instruction: str) -> str:
    found = re.findall(rf"^{instruction} (.+)$", text, re.M)
    if len(found) != 1:
        raise SystemExit(f"deploy/Dockerfile: {len(found)} {instruction} lines, expected 1")
    return found[0].strip()


def dockerfile() -> dict:
    text = (ROOT / "deploy/Dockerfile").read_text()
    uid, _, gid = one_line(text, "USER").partition(":")
    copy = re.findall(r"^COPY --from=build \S+ (/\S+)$", text, re.M)
    return {
        "uid": int(uid),
        "gid": int(gid),
        "port": int(one_line(text, "EXPOSE")),
        "entrypoint": json.loads(one_line(text, "ENTRYPOINT")),
        "cmd": json.loads(one_line(text, "CMD")),
        "binary": copy[0] if len(copy) == 1 else None,
    }


def listen_port(args: list[str]) -> int | None:
    for i, a in enumerate(args):
        value = a.split("=", 1)[1] if a.startswith("--listen=") else None
        if a == "--listen" and i + 1 < len(args):
            value = args[i + 1]
        if value:
            return int(value.rsplit(":", 1)[1])
    return None


def check() -> list[str]:
    errors = []
    d = dockerfile()
    if d["entrypoint"] != [d["binary"]]:
        errors.append(f"Dockerfile: ENTRYPOINT {d['entrypoint']} is not the copied binary {d['binary']}")
    if listen_port(d["cmd"]) != d["port"]:
        errors.append(f"Dockerfile: CMD listens on {listen_port(d['cmd'])}, EXPOSE says {d['port']}")

    build = (ROOT / "deploy/image/build.sh").read_text()
    name = re.search(r"^IMAGE_NAME=(\S+)$", build, re.M)
    version = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M)
    if not name or not version:
        return errors + ["deploy/image/build.sh has no IMAGE_NAME= line, or Cargo.toml no version"]
    image = f"{name.group(1)}:{version.group(1)}"

    for path in MANIFESTS:
        rel = path.relative_to(ROOT)
        pods = [doc["spec"]["template"]["spec"] for doc in yaml.safe_load_all(path.read_text())
                if doc and doc.get("kind") in ("Deployment", "StatefulSet")]
        if len(pods) != 1:
            errors.append(f"{rel}: expected one Deployment or StatefulSet")
            continue
        pod = pods[0]
        sc = pod.get("securityContext", {})
        if (sc.get("runAsUser"), sc.get("runAsGroup")) != (d["uid"], d["gid"]):
            errors.append(f"{rel}: runs as {sc.get('runAsUser')}:{sc.get('runAsGroup')}, "
                          f"the image as {d['uid']}:{d['gid']}")
        [c] = [c for c in pod["containers"] if c["name"] == "replicanary"]
        if c["image"] != image:
            errors.append(f"{rel}: image {c['image']}, deploy/image/build.sh tags {image}")
        ports = [p["containerPort"] for p in c.get("ports", [])]
        if ports != [d["port"]] or listen_port(c.get("args", [])) != d["port"]:
            errors.append(f"{rel}: ports {ports}, --listen port {listen_port(c.get('args', []))}; "
                          f"the image exposes {d['port']}")

    unit = (ROOT / "deploy/systemd/replicanary.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+)", unit, re.M)
    if not exec_start or exec_start.group(1) != d["binary"]:
        errors.append(f"deploy/systemd/replicanary.service: ExecStart runs "
                      f"{exec_start and exec_start.group(1)}, the image has {d['binary']}")
    return errors


if __name__ == "__main__":
    problems = check()
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"ok: the Dockerfile, deploy/image/build.sh, both Kubernetes variants and the "
              f"systemd unit agree (uid, port, entrypoint, image reference)")
    sys.exit(1 if problems else 0)
