"""The service's edge: who may call it, from where, and how.

Its pieces, in the order main.py stacks them (the order a request crosses them):
  1. EdgeMiddleware (edge.py): Host check (400), body size limit (413), security headers on
     every response, those refusals included; the 500 handler adds the same headers (errors.py),
  2. Starlette's CORSMiddleware when origins are configured, for requests with an Origin (cors.py),
  3. Starlette's GZipMiddleware, for complete response bodies from GZIP_MINIMUM_BYTES up, for
     requests that accept gzip, unless GZIP_ENABLED=false: behind a proxy that compresses
     (compression.py),
and the rate limits (rate_limit.py): the default one in the route class every router is given,
stricter ones as dependencies of the routes that ask; their 429s cross the edge and get its
headers.
The API docs are docs.py's router.
"""
