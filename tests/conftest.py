import subprocess

import pytest

from tests import colab_env


@pytest.fixture(scope="session")
def colab(tmp_path_factory):
    """(jupyter_path, python, source) of a Colab-like environment without the book's package,
    and the private copy of the checkout that its set-up cells install from."""
    where = tmp_path_factory.mktemp("colab-env")
    python = colab_env.build_env(where / "venv")
    probe = subprocess.run([str(python), "-c", "import lib.gumbel"], capture_output=True,
                           cwd=where)
    assert probe.returncode != 0, "the fresh environment must not have the book's package yet"
    source = colab_env.private_source(where / "source")
    return colab_env.kernel_dir(python, where / "jupyter"), python, source


@pytest.fixture(autouse=True)
def _torch_default_dtype_restored():
    """Every test starts with torch's default dtype and thread count as a fresh process has
    them: a test that sets float64 (as the chapters and the tools do) once hid a grader bug in
    the tests that ran after it."""
    import torch

    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
