class ProjectionError(Exception):
    """A projection that cannot start (bad target image, bad VGG16 file, bad settings); one line for the user."""
