"""Stage and zip the no-show Lambda function for the provided.al2023 runtime.

    python3 examples/lambda/package.py --bootstrap B --library L --model M --stage DIR --zip OUT.zip

Layout of the zip (Lambda unpacks it to /var/task):

    bootstrap            the custom runtime (RPATH $ORIGIN/lib)
    noshow.mdi           the model as a MedInfer tree file
    lib/libmedinfer.so.1 (its SONAME; RUNPATH $ORIGIN)
    lib/libjson-c.so.5, lib/libstdc++.so.6, lib/libgcc_s.so.1 ... every shared library
                         `ldd` resolves for bootstrap and libmedinfer.so except glibc's own

bootstrap and libmedinfer.so are stripped copies. The zip is deterministic (sorted
entries, fixed timestamps), deflated, with bootstrap executable. It also reports the
newest glibc symbol version any shipped file needs: provided.al2023 has glibc 2.34, and a
file that needs a newer one will not load there (LAMBDA_GLIBC_STRICT=1 makes that an
error instead of a warning). Fails when the zip is over 10 MB.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

# Provided by glibc on every Linux image, provided.al2023 included: never shipped.
GLIBC_LIBS = re.compile(r"^(linux-vdso|linux-gate|ld-linux[-\w.]*|libc|libm|libpthread|libdl|librt|libutil|"
                        r"libresolv|libnss_\w+|libmvec)\.so")
AL2023_GLIBC = (2, 34)
ZIP_LIMIT = 10 * 1000 * 1000
FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def ldd(path: Path, library_dir: Path | None = None) -> dict[str, str]:
    """soname -> resolved path, for every library the dynamic loader would load."""
    env = dict(os.environ)
    if library_dir is not None:  # the unstaged bootstrap looks for libmedinfer.so in $ORIGIN/lib
        env["LD_LIBRARY_PATH"] = str(library_dir.resolve())
    out = subprocess.run(["ldd", str(path)], check=True, capture_output=True, text=True, env=env).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(\S+)\s+\(", line)
        if m:
            if m.group(2) == "not":
                raise SystemExit(f"package: {path} needs {m.group(1)}, which ldd cannot find")
            found[m.group(1)] = m.group(2)
        elif "not found" in line:
            raise SystemExit(f"package: {path}: {line.strip()}")
    return found


def library_soname(path: Path) -> str:
    """The library's DT_SONAME (libmedinfer.so.1): the name bootstrap asks the loader for."""
    out = subprocess.run(["readelf", "-d", str(path)], check=True, capture_output=True, text=True).stdout
    m = re.search(r"Library soname: \[(.+?)\]", out)
    return m.group(1) if m else path.name


def newest_glibc(path: Path) -> tuple[tuple[int, ...], list[str]]:
    """The newest GLIBC_x.y version `path` imports, and the symbols that need it."""
    if not shutil.which("objdump"):
        return (), []
    out = subprocess.run(["objdump", "-T", str(path)], check=True, capture_output=True, text=True).stdout
    best: tuple[int, ...] = ()
    symbols: list[str] = []
    for line in out.splitlines():
        m = re.search(r"\*UND\*\s+\S+\s+(?:\(?)GLIBC_([\d.]+)\)?\s+(\S+)", line)
        if not m:
            continue
        version = tuple(int(x) for x in m.group(1).split("."))
        if version > best:
            best, symbols = version, [m.group(2)]
        elif version == best:
            symbols.append(m.group(2))
    return best, symbols


def strip_copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    if shutil.which("strip"):
        subprocess.run(["strip", "--strip-unneeded", str(target)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, type=Path)
    parser.add_argument("--library", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--stage", required=True, type=Path)
    parser.add_argument("--zip", required=True, type=Path)
    args = parser.parse_args()

    stage: Path = args.stage
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "lib").mkdir(parents=True)
    strip_copy(args.bootstrap, stage / "bootstrap")
    os.chmod(stage / "bootstrap", 0o755)
    library_name = library_soname(args.library)
    strip_copy(args.library, stage / "lib" / library_name)
    os.chmod(stage / "lib" / library_name, 0o755)
    shutil.copyfile(args.model, stage / args.model.name)

    shipped = {}
    for binary in (args.bootstrap, args.library):
        for soname, resolved in ldd(binary, args.library.parent).items():
            if soname == library_name or GLIBC_LIBS.match(soname):
                continue
            shipped[soname] = Path(resolved)
    for soname, resolved in sorted(shipped.items()):
        shutil.copyfile(resolved, stage / "lib" / soname)  # follows symlinks: the real file
        os.chmod(stage / "lib" / soname, 0o755)

    # Everything must now resolve inside the stage, without the build tree.
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    staged = subprocess.run(["ldd", str(stage / "bootstrap")], check=True, capture_output=True, text=True, env=env).stdout
    for soname in [library_name, *shipped]:
        m = re.search(rf"^\s*{re.escape(soname)}\s+=>\s+(\S+)", staged, re.M)
        if not m or Path(m.group(1)).resolve().parent != (stage / "lib").resolve():
            raise SystemExit(f"package: the staged bootstrap does not load {soname} from lib/:\n{staged}")

    args.zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.zip.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for path in sorted(p for p in stage.rglob("*")):
            name = path.relative_to(stage).as_posix()
            info = zipfile.ZipInfo(name + ("/" if path.is_dir() else ""), date_time=FIXED_TIME)
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.is_dir():
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
                z.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(args.zip)
    size = args.zip.stat().st_size

    print(f"package: {args.zip} ({size / 1e6:.2f} MB)")
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(stage).as_posix():24s} {path.stat().st_size / 1e6:7.2f} MB")
    worst = []
    for path in sorted(stage.rglob("*")):
        if path.is_file() and path.suffix != ".mdi":
            version, symbols = newest_glibc(path)
            if version and version > AL2023_GLIBC:
                worst.append(f"{path.relative_to(stage).as_posix()} needs GLIBC_{'.'.join(map(str, version))}"
                             f" ({', '.join(sorted(set(symbols))[:4])})")
    if worst:
        message = ("provided.al2023 has glibc 2.34, but " + "; ".join(worst) +
                   ". Build the library and the zip on Amazon Linux 2023 (e.g. in the SAM build image for"
                   " provided.al2023) to deploy; the zip works on hosts with a newer glibc.")
        if os.environ.get("LAMBDA_GLIBC_STRICT") == "1":
            print(f"package: error: {message}", file=sys.stderr)
            return 1
        print(f"package: WARNING: {message}")
    else:
        print("package: every shipped file runs with glibc 2.34 (provided.al2023)")
    if size >= ZIP_LIMIT:
        print(f"package: error: the zip is {size} bytes, over the 10 MB budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
