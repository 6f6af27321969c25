"""Build hook: record the git commit in the installed package for `git-info`.

Everything else lives in setup.cfg; this file exists only because setuptools needs
code to run at build time.
"""

import json
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


def _git_info() -> dict[str, object]:
    root = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": False}
    return {"commit": head, "dirty": dirty}


class BuildPyWithGitInfo(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "startos" / "_build_info.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(_git_info()))


setup(cmdclass={"build_py": BuildPyWithGitInfo})
