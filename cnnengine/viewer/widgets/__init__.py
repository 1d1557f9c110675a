"""The app's panels; each is a small self-contained widget."""
