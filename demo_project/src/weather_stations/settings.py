"""Project settings. kedro-dolt's hooks register themselves through their entry point; to
switch them off: DISABLE_HOOKS_FOR_PLUGINS = ("kedro-dolt",)."""
