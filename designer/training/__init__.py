"""Training in the window: the worker thread, the dashboard, the setup form and the run history.

``controller`` (what the main window creates) ties together ``worker`` (the training thread
and its main-thread session), ``dashboard`` (live plots and controls), ``config_panel``
(data and training settings, undoable through ``commands``), ``preview_dialog`` (samples of
the data) and ``runs`` (every run, compared).
"""
