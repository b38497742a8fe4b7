"""Jobs that measure animators: reconstruction, cross-identity, rate-distortion, failure analysis and the pose
reference. They take loaded animators and return rows; the CLI and UI resolve model names."""
