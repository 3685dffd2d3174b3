"""Build a wheelhouse for an offline bedrock-gw install on another machine (run on the controller).

    python3 ansible/wheelhouse.py --arch aarch64 --python 3.11 DEST

DEST receives bedrock-gw's wheel, built from this checkout, and a binary wheel of every
dependency for the target (a Linux machine name as ``uname -m`` prints it, and the target's
Python version); then set ``bedrock_gw_wheelhouse: DEST`` and the role installs with
``pip --no-index``. Nothing is compiled: a dependency with no wheel for the target is reported,
with what to do about it. Wheels you built yourself (``pip wheel`` on a machine like the target)
are taken from ``--find-links`` directories.

pip cannot evaluate environment markers for another machine, so this script does it for the
project's own requirements (uvloop is wanted on x86_64 and aarch64 only) and passes the result.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
ARCHES = ("x86_64", "aarch64", "armv7l")
# Fixed zip dates: the same source gives the same wheel, so the role sees no change.
SOURCE_DATE_EPOCH = "315532800"
NO_WHEEL_HINT = {
    "armv7l": (
        "PyPI has no armv7l wheel of cffi, which cryptography needs. Raspberry Pi OS hosts get "
        "one from piwheels (--extra-index-url https://www.piwheels.org/simple); otherwise build "
        "it once on an armv7l machine (pip wheel cffi, with gcc, libffi-dev and python3-dev) "
        "and pass its directory with --find-links."
    ),
}


def platform_tags(arch: str, glibc: str) -> list[str]:
    """pip --platform values for a glibc Linux of at most the given version."""
    major, minor = (int(part) for part in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    # Wheels built on such a machine itself carry the plain tag.
    tags.append(f"linux_{arch}")
    return tags


def marker_environment(arch: str, python: str) -> dict[str, str]:
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": "linux",
        "extra": "",
    }


def requirements_for(wheel: Path, arch: str, python: str) -> list[str]:
    """The wheel's requirements that apply on the target, markers removed."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    environment = marker_environment(arch, python)
    wanted = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment):
            requirement.marker = None
            wanted.append(str(requirement))
    return wanted


def build_project_wheel(source: Path, dest: Path) -> Path:
    for old in dest.glob("bedrock_gw-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
                "--wheel-dir",
                scratch,
                str(source),
            ],
            check=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
        )
        (built,) = Path(scratch).glob("bedrock_gw-*.whl")
        target = dest / built.name
        built.replace(target)
    return target


def download(
    requirements: list[str],
    dest: Path,
    *,
    arch: str,
    python: str,
    glibc: str,
    find_links: list[Path],
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--abi",
        f"cp{python.replace('.', '')}",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for tag in platform_tags(arch, glibc):
        argv += ["--platform", tag]
    for directory in (dest, *find_links):
        argv += ["--find-links", str(directory)]
    return subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [*argv, *requirements], capture_output=True, text=True, check=False
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="directory to fill (created if missing)")
    parser.add_argument("--arch", choices=ARCHES, required=True, help="target's uname -m")
    parser.add_argument("--python", default="3.11", help="target's Python, e.g. 3.11 or 3.13")
    parser.add_argument(
        "--glibc",
        default="2.35",
        help="target's glibc or older (Debian 12: 2.36, Ubuntu 22.04: 2.35)",
    )
    parser.add_argument("--source", type=Path, default=REPO, help="bedrock-gw checkout")
    parser.add_argument(
        "--find-links", type=Path, action="append", default=[], help="more wheels to use"
    )
    args = parser.parse_args(argv)

    args.dest.mkdir(parents=True, exist_ok=True)
    project = build_project_wheel(args.source, args.dest)
    requirements = requirements_for(project, args.arch, args.python)
    result = download(
        requirements,
        args.dest,
        arch=args.arch,
        python=args.python,
        glibc=args.glibc,
        find_links=args.find_links,
    )
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        if args.arch in NO_WHEEL_HINT:
            print(f"\n{NO_WHEEL_HINT[args.arch]}", file=sys.stderr)
        return 1
    wheels = sorted(path.name for path in args.dest.glob("*.whl"))
    print(f"{args.dest}: {len(wheels)} wheels for {args.arch}, Python {args.python}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
