"""OpenTelemetry traces of sagas: one trace per saga, carried in a W3C `traceparent` header.

Optional (`pip install 'choreo[otel]'`) and off unless the standard `OTEL_*` variables ask for
traces (config.py). Only config.py may be imported without the extra installed.
"""
