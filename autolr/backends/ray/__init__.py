"""The Ray Tune engine: a study's trials as Tune trials on a local Ray or a cluster."""
