"""The local build command: the native image pipeline on this machine, no Koji hub."""
