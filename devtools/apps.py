from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Development tooling: the demo data, benchmark data and their commands.
    No models; the runner (`python -m devtools`) imports no Django at all."""

    name = "devtools"
    verbose_name = "Development tools"
