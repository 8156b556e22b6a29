"""Raw events in, typed events table out: schema, discovery, decoding, validation, sort, quality.

Modules (one concern each; ``load`` orchestrates and re-exports the public names):
``schema`` (raw keys, vocabularies, events-table dtypes), ``discover`` (which input files), ``decode``
(bytes/Parquet → raw-key frames), ``rules`` (validation rules and reason codes), ``first_pass``
(decode, validate, quarantine, spill), ``sort`` (on-disk sort and de-duplication), ``quality``
(report, bad-share gate, quarantine file), ``table`` (build/read the events table), ``records``
(``normalize_records`` for serving), ``errors``, ``load`` (``load_events``), ``entry`` (the body of
``churnflow load`` and ``stages/load.py``).
"""
