"""Hello World: a greeting and a visit counter over HTTP."""
