"""Models designed in facelab (the proposed animator)."""
