"""Online and batch serving: BentoML service, request/response schemas, risk bands, auth and rate limits.

Import :mod:`churnflow.serving.service` only where a packaged BentoML model exists (it resolves it on
import); the other modules are plain library code.
"""
