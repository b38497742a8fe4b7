"""UI glue for the Gradio app: type conversions and file handling around :mod:`lab`, no science here."""
