"""The core: requests, policy, the runner's stages and the poll schedule. No I/O library here."""
