"""Install routes: the GPU route keeps a machine's own torch, and the declared dependencies allow it."""

import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# What the lent GPU machines carry (their image: CUDA torch 2.11, triton 3.6, transformers 5.17).
GPU_IMAGE = {"torch": "2.11.0", "triton": "3.6.0", "transformers": "5.17.0"}


def _requirements(extra: str | None = None) -> dict[str, Requirement]:
    listed = PYPROJECT["project"]["dependencies"] if extra is None else PYPROJECT["project"]["optional-dependencies"][extra]
    return {Requirement(r).name: Requirement(r) for r in listed}


@pytest.mark.parametrize(("package", "version"), sorted(GPU_IMAGE.items()))
def test_the_gpu_image_versions_satisfy_the_dependencies(package, version):
    requirement = _requirements()[package]
    assert requirement.specifier.contains(Version(version), prereleases=True), (
        f"{requirement} would make pip replace the GPU machine's {package} {version}"
    )


def test_the_keep_torch_constraint_matches_the_installed_torch():
    """The README's GPU route writes 'torch==<installed version>' as a pip constraint."""
    import torch

    constraint = Requirement("torch==" + torch.__version__)
    assert constraint.specifier.contains(Version(torch.__version__), prereleases=True)


def test_readme_gpu_route_keeps_the_machines_torch():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### On a GPU machine") :]
    section = section[: section.index("\n## ")]
    assert "--system-site-packages" in section and "keep-torch.txt" in section
    assert "torch==2.13.0" not in section  # the CPU pin must not be part of the GPU route


def test_every_extra_package_is_used_by_the_code():
    """An extra installs only what some file of the repo imports (no dead multi-GB downloads)."""
    import_names = {"faiss-cpu": "faiss", "faiss-gpu-cu12": "faiss", "pytrec-eval-terrier": "pytrec_eval",
                    "pytest-benchmark": "pytest_benchmark", "scikit-learn": "sklearn"}
    sources = "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for folder in ("fastmteb", "kernels", "tests", "bench")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".sh")
    )
    for extra, listed in PYPROJECT["project"]["optional-dependencies"].items():
        for line in listed:
            name = Requirement(line).name
            module = import_names.get(name, name.replace("-", "_"))
            used = (
                re.search(rf"(^|\s)(import|from)\s+{re.escape(module)}\b", sources, re.M)
                or re.search(rf"importorskip\(\s*[\"']{re.escape(module)}", sources)
                # a pytest plugin is used through its fixture
                or (name == "pytest-benchmark" and re.search(r"def test_\w+\([^)]*\bbenchmark\b", sources))
            )
            assert used, f"extra [{extra}] installs {name}, but no code imports {module}"


def test_every_package_folder_is_listed_for_installation():
    """setuptools installs only the listed packages: an unlisted one works in an editable install
    and is missing from the wheel."""
    dirs = PYPROJECT["tool"]["setuptools"]["package-dir"]
    found = {
        ".".join((package, *init.parent.relative_to(ROOT / folder).parts))
        for package, folder in dirs.items()
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found == set(PYPROJECT["tool"]["setuptools"]["packages"])


def test_the_installed_version_is_the_one_in_version_py():
    """pyproject.toml reads the version from fastmteb/version.py: one place to bump it."""
    from importlib.metadata import version

    import fastmteb

    assert version("fastmteb") == fastmteb.__version__
