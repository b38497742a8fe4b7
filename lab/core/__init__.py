"""The ground floor everything else builds on: the animator interface, the registry (the one factory), safe
checkpoint loading, the one config loader, the weights-folder search order, and the shared helpers (progress,
number formatting, running animators on frames). Imports nothing of ``lab`` above it."""
