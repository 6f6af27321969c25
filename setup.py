"""Build hook: record the git commit in the installed package for `git-info`.

Everything else lives in setup.cfg; this file exists only because setuptools needs
code to run at build time.
"""

import json
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


def _git_info() -> dict[str, object]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from startos.buildinfo import _from_checkout  # stdlib only: safe to import at build time

    return _from_checkout(Path(__file__).resolve().parent) or {"commit": None, "dirty": False}


class BuildPyWithGitInfo(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "startos" / "_build_info.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(_git_info()))


setup(cmdclass={"build_py": BuildPyWithGitInfo})
