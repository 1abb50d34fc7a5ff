"""The application layer: the sim session, the launcher, reports and experiment recipes. Nothing below imports it."""
