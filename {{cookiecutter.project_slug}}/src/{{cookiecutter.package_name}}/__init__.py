"""The {{ cookiecutter.project_slug }} service: see README.md."""

__version__ = "{{ cookiecutter.version }}"
