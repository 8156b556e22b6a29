"""Drift monitoring: reference, per-column tests, domain classifier, label-free performance, alerts,
dashboard, and the serving path's rolling score. See docs/monitoring.md.

Modules: ``stats`` (statistics on count vectors), ``profile`` (a column's fixed cells), ``reference``
(build / validate the reference), ``windows`` (a new export at the training cutoff offsets), ``drift``
(per-column tests, null laws, correction), ``domain`` (classifier), ``performance`` (CBPE, realised),
``alerts`` (severity, cooldown), ``check`` (one whole check), ``dashboard`` (HTML), ``online``
(``RollingDrift``, numpy only: the service imports it).

Nothing is imported here, so ``churnflow.monitoring.online`` stays light for the service.
"""
