"""Everything about the build is in pyproject.toml except one file: ``kedro_dolt_json.pth``
must sit at the top of site-packages (see ``_kedro_dolt_json.py``), in wheels and in editable
installs alike, which setuptools cannot declare."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "kedro_dolt_json.pth"
HERE = Path(__file__).parent


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(HERE / PTH), str(Path(self.build_lib) / PTH))


class EditableWheelWithPth(editable_wheel):
    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):  # type: ignore[no-untyped-def]
        result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        self.copy_file(str(HERE / PTH), str(Path(unpacked_wheel) / PTH))
        return result


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
