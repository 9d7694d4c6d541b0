"""Build steps pyproject.toml cannot declare: put libmedinfer.so into the package, and tag
the wheel for this platform (it ships a native library; any Python 3, no C extension).

The library is $MEDINFER_LIBRARY, else .build/release/libmedinfer.so (make lib). Its
medinfer_version() must equal the VERSION file, which is also the package version.
"""
import ctypes
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent


def built_library() -> Path:
    path = Path(os.environ.get("MEDINFER_LIBRARY") or ROOT / ".build" / "release" / "libmedinfer.so")
    if not path.is_file():
        raise SystemExit(f"setup.py: {path} does not exist; build it first with `make lib`")
    version = (ROOT / "VERSION").read_text().strip()
    lib = ctypes.CDLL(str(path.resolve()))
    lib.medinfer_version.restype = ctypes.c_char_p
    found = lib.medinfer_version().decode()
    if found != version:
        raise SystemExit(f"setup.py: {path} is version {found}, VERSION says {version}; rebuild it (make lib)")
    return path


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "medinfer" / "libmedinfer.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built_library().resolve(), target)  # the real file, not a symlink
        os.chmod(target, 0o755)
        if shutil.which("strip"):  # debug symbols halve the download; the dynamic symbols stay
            subprocess.run(["strip", "--strip-unneeded", str(target)], check=True)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # platlib, platform wheel
        return True


cmdclass = {"build_py": BuildPyWithLibrary}
try:
    from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _, _, platform = super().get_tag()
            return "py3", "none", platform  # ctypes, not a CPython extension

    cmdclass["bdist_wheel"] = PlatformWheel
except ImportError:
    pass

# Build byproducts go under .build/, not into the source tree.
SCRATCH = ROOT / ".build" / "packaging"
SCRATCH.mkdir(parents=True, exist_ok=True)
setup(cmdclass=cmdclass, distclass=BinaryDistribution,
      options={"build": {"build_base": str(SCRATCH / "setuptools")}, "egg_info": {"egg_base": str(SCRATCH)}})
