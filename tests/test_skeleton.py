import subprocess
import sys


def test_purelint_does_not_import_jax_or_torch():
    code = "import sys, purelint; assert 'jax' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
