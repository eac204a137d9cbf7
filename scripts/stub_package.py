"""Build step: give an installed copy of the one-file module its types.

PEP 561's ``py.typed`` marker only covers packages, so mypy calls an installed
``lmstudio_provider.py`` untyped. ``setup.cfg`` names this ``build_py`` as the
build's, which also writes a PEP 561 stub-only package into the wheel:
``lmstudio_provider-stubs/__init__.pyi``, a byte-for-byte copy of the module made at
build time. A stub file may hold a whole module's source, so the stub is the module
itself and there is nothing to keep in step by hand.

Editable installs: setuptools' default ("lenient") editable mode leaves built files
out and imports the module through a hook that type checkers cannot follow, so
``setup.cfg`` asks for the strict mode, where the stub, like the module, is a link to
the module in the checkout (``get_output_mapping`` says so): edits show at once.
"""

from __future__ import annotations

import os

from setuptools.command.build_py import build_py


class BuildPyWithStubs(build_py):
    """``build_py`` that adds ``<module>-stubs/__init__.pyi`` for each top-level module."""

    def _stubs(self) -> dict[str, str]:
        """Map each stub the build writes (under build_lib) to the module it copies."""
        return {
            os.path.join(self.build_lib, f"{module}-stubs", "__init__.pyi"): source
            for package, module, source in self.find_modules()
            if not package
        }

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # build_py copies nothing then either; see the docstring
            return
        for stub, source in self._stubs().items():
            self.mkpath(os.path.dirname(stub))
            self.copy_file(source, stub, preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *self._stubs()]

    def get_output_mapping(self) -> dict[str, str]:
        return {**super().get_output_mapping(), **self._stubs()}
