"""Training: the loop (``trainer``), what each head learns from (``objectives``), run files (``runs``)."""
